/* SPDX-License-Identifier: GPL-2.0 */
/* The sysctl tuner's scenario and event data (struct bpftune_event.data). */
#ifndef SYSCTL_TUNER_H
#define SYSCTL_TUNER_H

enum sysctl_scenario {
	SYSCTL_SCENARIO_WRITE = 0,
};

enum sysctl_sizes {
	SYSCTL_NAME_LEN = 96,	/* "net/ipv4/tcp_rmem", as bpf_sysctl_get_name() gives it */
	SYSCTL_COMM_LEN = 16,	/* TASK_COMM_LEN: the writer, if it exits before we look */
};

struct sysctl_event_data {
	char name[SYSCTL_NAME_LEN];
	char comm[SYSCTL_COMM_LEN];
};

#endif
