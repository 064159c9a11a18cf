/* Test hooks of the libvirt provider (virt.c); not for the daemon. */
#ifndef NUBO_AGENT_VIRT_PRIV_H
#define NUBO_AGENT_VIRT_PRIV_H

struct agent_virt;

/* Makes every later libvirt call of 'v' sleep 'ms' on its worker thread before it runs, to
 * simulate a hung libvirtd. 0 turns it off. */
void agent_virt_set_test_delay(struct agent_virt *v, long ms);

/* The number of calls of 'v' abandoned after a timeout that have not returned yet. */
int agent_virt_abandoned_calls(struct agent_virt *v);

#endif
