/**
 * udp_buffer effect: a slow UDP receiver (drains every 20 ms, reopens its
 * socket every 250 ms, asks SO_RCVBUF 4 MiB) flooded in bursts of 100
 * 1000-byte datagrams every 20 ms over a veth, from net.core.rmem_max 32768.
 * Each round floods twice: the first is where bpftune adapts, the second is
 * measured. Drops per 1000 datagrams sent (the receiving namespace's
 * RcvbufErrors), without and with bpftune, alternating rounds in the same
 * invocation. rmem_max is global: saved before and restored after.
 *
 * Run as root: node dist/bench/udp_buffer.js
 */
import { execFileSync } from 'node:child_process';
import { DaemonProcess, stopAllDaemons } from '../test/support/daemon';
import { globalTunables } from '../test/support/global-sysctls';
import udpBufferTuner from '../src/tuners/udp_buffer/index';
import { cleanupNamespaces, removeStaleNamespaces, sysctlIn } from '../test/support/netns';
import { createVethPair } from '../src/tuners/tcp_buffer/test-net';
import { dropsPerThousand, udpFlood, type FloodResult } from '../src/tuners/udp_buffer/test-traffic';
import type { EffectResult } from './effect';
import { printEffect } from './print-effect';
import { median } from './stats';

const QUICK = process.env.BPFTUNE_BENCH_QUICK === '1';
const ROUNDS = QUICK ? 1 : 3;
const ADAPT_SECONDS = 6;
const MEASURE_SECONDS = 3;
const LOW_RMEM_MAX = '32768';
const GLOBALS = globalTunables(udpBufferTuner);

function setGlobal(name: string, value: string): void {
  execFileSync('sysctl', ['-q', '-w', `${name}=${value}`]);
}

interface Round {
  adapting: FloodResult;
  measured: FloodResult;
  rmemMax: string;
}

async function oneRound(withBpftune: boolean, port: number): Promise<Round> {
  const pair = createVethPair();
  setGlobal('net.core.rmem_max', LOW_RMEM_MAX);
  const daemon = withBpftune ? new DaemonProcess(['-a', 'udp_buffer', '-R']) : undefined;
  const flood = (seconds: number) => udpFlood(pair.client, pair.server, pair.serverAddr4, port, { rcvbufRequest: 4 << 20, seconds });
  try {
    await daemon?.started();
    const adapting = await flood(ADAPT_SECONDS);
    const measured = await flood(MEASURE_SECONDS);
    return { adapting, measured, rmemMax: sysctlIn(null, 'net.core.rmem_max') };
  } finally {
    await daemon?.stop();
    cleanupNamespaces();
  }
}

function spread(values: number[], digits: number): string {
  const finite = values.filter((v) => Number.isFinite(v));
  return `${median(finite).toFixed(digits)} (${Math.min(...finite).toFixed(digits)}-${Math.max(...finite).toFixed(digits)})`;
}

export async function udpBufferEffect(): Promise<EffectResult> {
  removeStaleNamespaces();
  const saved = new Map(GLOBALS.map((name) => [name, sysctlIn(null, name)]));
  try {
    const without: Round[] = [];
    const withIt: Round[] = [];
    // Alternating, so load from other work on the machine hits both sides alike.
    for (let i = 0; i < ROUNDS; i++) {
      without.push(await oneRound(false, 5500 + 2 * i));
      withIt.push(await oneRound(true, 5501 + 2 * i));
    }
    const rate = (rounds: Round[], which: 'adapting' | 'measured') => rounds.map((r) => dropsPerThousand(r[which]));
    const rateWith = median(rate(withIt, 'measured').filter(Number.isFinite));
    const rateWithout = median(rate(without, 'measured').filter(Number.isFinite));
    return {
      scenario: `udp_buffer: slow UDP receiver asking SO_RCVBUF 4 MiB under rmem_max ${LOW_RMEM_MAX}, bursts of 100 x 1000 B every 20 ms; a ${ADAPT_SECONDS} s flood, then a measured ${MEASURE_SECONDS} s flood; median of ${ROUNDS} alternating rounds`,
      rows: [
        {
          metric: 'measured flood: drops per 1000 datagrams, median (min-max)',
          value: spread(rate(withIt, 'measured'), 1),
          baseline: spread(rate(without, 'measured'), 1),
          target: '< 25% of baseline',
          met: rateWith * 4 < rateWithout,
        },
        { metric: 'first flood (adapting): drops per 1000 datagrams', value: spread(rate(withIt, 'adapting'), 1), baseline: spread(rate(without, 'adapting'), 1) },
        { metric: 'datagrams sent per measured flood', value: String(median(withIt.map((r) => r.measured.sent))), baseline: String(median(without.map((r) => r.measured.sent))) },
        { metric: 'receive buffer of the last socket (bytes)', value: withIt.map((r) => r.measured.rcvbufs.at(-1) ?? 0).join(', '), baseline: without.map((r) => r.measured.rcvbufs.at(-1) ?? 0).join(', ') },
        { metric: 'net.core.rmem_max after the floods', value: withIt.map((r) => r.rmemMax).join(', '), baseline: LOW_RMEM_MAX },
      ],
      notes: [
        'A socket gets its buffer when it is made (or SO_RCVBUF is set), so a grown rmem_max helps the sockets the receiver opens afterwards: it reopens every 250 ms.',
        'Global sysctls were saved before and restored after the runs (and -R restored what bpftune changed).',
      ],
    };
  } finally {
    await stopAllDaemons();
    cleanupNamespaces();
    for (const [name, value] of saved) if (sysctlIn(null, name) !== value) setGlobal(name, value);
  }
}

if (require.main === module) {
  udpBufferEffect()
    .then((r) => printEffect(r))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
