/**
 * A BPF map seen through the key and value codecs of a tuner's generated
 * contract (`maps.<name>` in <tuner>.contract.ts), so no tuner lays out a
 * key with Buffer.alloc. The sizes are checked against the loaded map once,
 * when it is opened: a contract from another build fails there, not on the
 * first update.
 */
import type { NativeMap } from './native';

/** A generated struct or integer codec. */
export interface Codec<T> {
  readonly size: number;
  decode(b: Buffer, offset?: number): T;
  encode(value: T, b?: Buffer, offset?: number): Buffer;
}

/** A generated map description: `maps.tcpConnChoices` in tcp_conn.contract.ts. */
export interface MapSpec<K, V> {
  readonly name: string;
  readonly key: Codec<K>;
  readonly value: Codec<V>;
}

export interface TypedMap<K, V> {
  readonly name: string;
  /** undefined when the key is absent. */
  lookup(key: K): V | undefined;
  update(key: K, value: V): void;
  /** false when the key was absent. */
  delete(key: K): boolean;
  keys(): K[];
}

export function typedMap<K, V>(map: NativeMap, spec: MapSpec<K, V>): TypedMap<K, V> {
  if (map.keySize !== spec.key.size || map.valueSize !== spec.value.size) {
    throw new Error(
      `map '${spec.name}' has key/value sizes ${map.keySize}/${map.valueSize} but the contract says ${spec.key.size}/${spec.value.size}: ` +
        'the contract was generated from another build of the object; rebuild the tuner',
    );
  }
  return {
    name: spec.name,
    lookup: (key) => {
      const value = map.lookup(spec.key.encode(key));
      return value ? spec.value.decode(value) : undefined;
    },
    update: (key, value) => map.update(spec.key.encode(key), spec.value.encode(value)),
    delete: (key) => map.delete(spec.key.encode(key)),
    keys: () => map.keys().map((k) => spec.key.decode(k)),
  };
}
