/**
 * The tcp_buffer tuner's tunables and scenarios, as data. Scenario names and
 * descriptions of the first six are the reference's (shared/compat.md):
 * operators grep for them.
 */
import type { ScenarioDeclaration, TunableDeclaration } from '../../core/tuner';

export const TCP_RMEM = 'net.ipv4.tcp_rmem';
export const TCP_WMEM = 'net.ipv4.tcp_wmem';
export const TCP_MEM = 'net.ipv4.tcp_mem';
export const TCP_MODERATE_RCVBUF = 'net.ipv4.tcp_moderate_rcvbuf';
export const TCP_NO_METRICS_SAVE = 'net.ipv4.tcp_no_metrics_save';
export const TCP_NO_SSTHRESH_METRICS_SAVE = 'net.ipv4.tcp_no_ssthresh_metrics_save';
export const HIGH_ORDER_ALLOC_DISABLE = 'net.core.high_order_alloc_disable';
export const TCP_MAX_SYN_BACKLOG = 'net.ipv4.tcp_max_syn_backlog';
export const TCP_SYNCOOKIES = 'net.ipv4.tcp_syncookies';

const BUFFER_LABELS = ['min', 'default', 'max'];

/** The declarations, by what they are: ctx.tunable(Tunable.rmem).get(cookie) gives numbers. */
export const Tunable = {
  rmem: { name: TCP_RMEM, namespaced: true, values: 3, labels: BUFFER_LABELS },
  wmem: { name: TCP_WMEM, namespaced: true, values: 3, labels: BUFFER_LABELS },
  // The kernel registers tcp_mem in the initial namespace only: TCP memory is accounted globally.
  mem: { name: TCP_MEM, namespaced: false, values: 3, labels: ['min', 'pressure', 'max'] },
  moderateRcvbuf: { name: TCP_MODERATE_RCVBUF, namespaced: true, values: 1 },
  noMetricsSave: { name: TCP_NO_METRICS_SAVE, namespaced: true, values: 1 },
  noSsthreshMetricsSave: { name: TCP_NO_SSTHRESH_METRICS_SAVE, namespaced: true, values: 1, optional: true },
  highOrderAllocDisable: { name: HIGH_ORDER_ALLOC_DISABLE, namespaced: false, values: 1, optional: true },
  maxSynBacklog: { name: TCP_MAX_SYN_BACKLOG, namespaced: true, values: 1 },
  syncookies: { name: TCP_SYNCOOKIES, namespaced: true, values: 1 },
} satisfies Record<string, TunableDeclaration>;

export const TUNABLES: TunableDeclaration[] = Object.values(Tunable);

export const Scenario = {
  increase: 0,
  decrease: 1,
  decreaseLatency: 2,
  memPressure: 3,
  memExhaustion: 4,
  moderateRcvbuf: 5,
  memRecovered: 6,
  synBacklogIncrease: 7,
  synBacklogDecrease: 8,
  syncookiesEnable: 9,
  syncookiesDisable: 10,
  highOrderAllocEnable: 11,
  increaseUndone: 12,
} as const;

export const SCENARIOS: ScenarioDeclaration[] = [
  {
    id: Scenario.increase,
    name: 'need to increase TCP buffer size(s)',
    description: 'Need to increase buffer size(s) to maximize throughput',
  },
  {
    id: Scenario.decrease,
    name: 'need to decrease TCP buffer size(s)',
    description: 'Need to decrease buffer size(s) to reduce memory utilization',
  },
  {
    id: Scenario.decreaseLatency,
    name: 'need to decrease TCP buffer size due to latency',
    description: 'Latency is starting to correlate with buffer size increases, so decrease buffer size to avoid this effect',
  },
  {
    id: Scenario.memPressure,
    name: 'approaching TCP memory pressure',
    description: 'Since memory pressure/exhaustion are unstable system states, adjust tcp memory-related tunables',
  },
  {
    id: Scenario.memExhaustion,
    name: 'approaching TCP memory exhaustion',
    description: 'Since memory exhaustion is a highly unstable state, adjust TCP memory-related tunables to avoid exhaustion',
  },
  {
    id: Scenario.moderateRcvbuf,
    name: 'match receive buffer size with throughput needs',
    description:
      'Since we are tuning rcvbuf max size, ensure auto-tuning of rcvbuf size for the connection is enabled to pick optimal rcvbuf size',
  },
  {
    id: Scenario.memRecovered,
    name: 'TCP memory use recovered',
    description: 'TCP memory use is back below the minimum threshold, so restore what was changed to survive exhaustion',
  },
  {
    id: Scenario.synBacklogIncrease,
    name: 'need to increase max SYN backlog',
    description: 'The SYN queue overflowed while connections were being accepted: legitimate load needs a longer queue',
  },
  {
    id: Scenario.synBacklogDecrease,
    name: 'need to decrease max SYN backlog',
    description: 'The SYN queue overflowed but no connections were accepted: a flood, so a longer queue would only hold more of it',
  },
  {
    id: Scenario.syncookiesEnable,
    name: 'need to enable SYN cookies',
    description: 'The SYN backlog cannot grow further, so SYN cookies must answer the overflow',
  },
  {
    id: Scenario.syncookiesDisable,
    name: 'need to disable SYN cookies',
    description: 'SYN cookies were sent but none came back valid: they only cost CPU for a flood',
  },
  {
    // The reference's net_buffer scenario, word for word (typo included) so greps for it match.
    id: Scenario.highOrderAllocEnable,
    name: 'need to enable high-order allocation for skb page frags',
    description:
      'On pre-5.14 kernels setting net.core.high_order_alloc_disable=1 reduced contention, but disabling high-order allocations lowers performance with little benefit now that frags are allocated on a pre-cpu basis and contention is minimized.',
  },
  {
    id: Scenario.increaseUndone,
    name: 'TCP buffer increase did not help',
    description:
      'Raising the buffer limit brought no more throughput, or more retransmits, losses or memory: it is undone and not retried for a while',
  },
];
