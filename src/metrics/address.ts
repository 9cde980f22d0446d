/**
 * --metrics ADDR:PORT: an IPv4 address, or an IPv6 one in brackets
 * ("[::1]:9845"). The address is required, so nothing listens anywhere an
 * operator did not name; port 0 picks a free one (the daemon logs which).
 */
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || !host || isIP(host) === 0 || !(port >= 0 && port <= 65535)) {
    throw new Error(`invalid address '${text}': expected IPV4:PORT or [IPV6]:PORT, e.g. 127.0.0.1:9845 or [::]:9845`);
  }
  return { host, port };
}

export function formatListenAddress(address: ListenAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
