import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { COLLECT_MIN_INTERVAL_MS, HEAP_GROWTH_BYTES, MemoryKeeper, withNodeFlags, type HeapCollector } from '../../src/core/heap';

const MiB = 1024 * 1024;

/** A heap whose size the test sets; a collection shrinks it to `live`. */
function fakeHeap(start: number) {
  const heap = { bytes: start, live: start, collects: 0 };
  const collector: HeapCollector = {
    heapBytes: () => heap.bytes,
    collect: () => {
      heap.collects++;
      heap.bytes = heap.live;
    },
  };
  return { heap, collector };
}

test('MemoryKeeper collects and trims once the heap grew past the threshold, and not more often than the interval', () => {
  const { heap, collector } = fakeHeap(8 * MiB);
  let now = 100_000;
  let trims = 0;
  const keeper = new MemoryKeeper(collector, () => trims++, () => now);
  try {
    heap.bytes = 8 * MiB + HEAP_GROWTH_BYTES - 1;
    assert.equal(keeper.check(), false, 'below the threshold: nothing');
    heap.bytes = 8 * MiB + HEAP_GROWTH_BYTES;
    assert.equal(keeper.check(), true);
    assert.deepEqual([heap.collects, trims, heap.bytes], [1, 1, 8 * MiB]);

    heap.bytes = 20 * MiB;
    now += COLLECT_MIN_INTERVAL_MS - 1;
    assert.equal(keeper.check(), false, 'too soon after the last collection');
    now += 1;
    assert.equal(keeper.check(), true);
    assert.equal(heap.collects, 2);

    // Live data grew for real: the threshold counts from what the last collection left.
    heap.live = 12 * MiB;
    heap.bytes = 20 * MiB;
    now += COLLECT_MIN_INTERVAL_MS;
    assert.equal(keeper.check(), true);
    heap.bytes = 12 * MiB + HEAP_GROWTH_BYTES - 1;
    now += COLLECT_MIN_INTERVAL_MS;
    assert.equal(keeper.check(), false, 'baseline is the size after the last collection');
    assert.equal(keeper.collections, 3);
  } finally {
    keeper.stop();
  }
});

test('MemoryKeeper.noteActivity checks once per burst, about a second later, and not at all without activity', async () => {
  const { heap, collector } = fakeHeap(8 * MiB);
  let trims = 0;
  const keeper = new MemoryKeeper(collector, () => trims++, () => Date.now() + 1e9);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    heap.bytes = 30 * MiB;
    for (let i = 0; i < 100; i++) keeper.noteActivity();
    await sleep(500);
    assert.equal(heap.collects, 0, 'not at once');
    await sleep(1000);
    assert.deepEqual([heap.collects, trims], [1, 1], 'one check for the whole burst');
    heap.bytes = 30 * MiB;
    await sleep(1500);
    assert.equal(heap.collects, 1, 'no activity, no check');
  } finally {
    keeper.stop();
  }
});

test('withNodeFlags adds --lite-mode and --no-expose-wasm, keeping what the command line says', () => {
  assert.deepEqual(withNodeFlags([]), ['--lite-mode', '--no-expose-wasm']);
  assert.deepEqual(withNodeFlags(['--no-lite-mode']), ['--no-lite-mode', '--no-expose-wasm']);
  assert.deepEqual(withNodeFlags(['--lite_mode', '--expose-wasm']), ['--lite_mode', '--expose-wasm']);
  assert.deepEqual(withNodeFlags(['--max-old-space-size=64']), ['--max-old-space-size=64', '--lite-mode', '--no-expose-wasm']);
});
