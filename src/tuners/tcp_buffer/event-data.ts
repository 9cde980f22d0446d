/**
 * Mirror of tcp_buffer.h: the event kinds the BPF side posts in
 * bpftune_event.scenario_id and struct tcp_buffer_data in .data.
 * tcp_buffer.test.ts checks these offsets against the object's BTF.
 */
export const EventKind = {
  rmemNearMax: 0,
  wmemNearMax: 1,
  memExceeded: 2,
} as const;

export const TCP_BUFFER_DATA_LAYOUT = {
  rtt_us: { offset: 0, size: 4 },
  sk_buf: { offset: 4, size: 4 },
  family: { offset: 8, size: 2 },
  pad: { offset: 10, size: 2 },
  tcp_moderate_rcvbuf: { offset: 12, size: 4 },
} as const;

export const TCP_BUFFER_DATA_SIZE = 16;

export interface TcpBufferData {
  rttUs: number;
  skBuf: number;
  family: number;
  tcpModerateRcvbuf: number;
}

export function decodeTcpBufferData(data: Buffer): TcpBufferData {
  const L = TCP_BUFFER_DATA_LAYOUT;
  return {
    rttUs: data.readUInt32LE(L.rtt_us.offset),
    skBuf: data.readInt32LE(L.sk_buf.offset),
    family: data.readUInt16LE(L.family.offset),
    tcpModerateRcvbuf: data.readUInt32LE(L.tcp_moderate_rcvbuf.offset),
  };
}
