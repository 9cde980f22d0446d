/* SPDX-License-Identifier: GPL-2.0 */
/* Layout of the sysctl tuner's event data (struct bpftune_event.data). */
#ifndef SYSCTL_TUNER_H
#define SYSCTL_TUNER_H

#define SYSCTL_NAME_LEN	96	/* "net/ipv4/tcp_rmem", as bpf_sysctl_get_name() gives it */
#define SYSCTL_COMM_OFFSET SYSCTL_NAME_LEN
#define SYSCTL_COMM_LEN	16	/* TASK_COMM_LEN: the writer, if it exits before we look */

#define SYSCTL_SCENARIO_WRITE 0

#endif
