#!/bin/sh
# Pacemaker (pcs) for an ldirector director pair: the same layout as crm.txt. ldirector (the
# ocf:ldirector:ldirector agent, contrib/ocf/ldirector) runs as a clone on both nodes, so each
# keeps the table warm and runs its sync daemons; the virtual IP and, with NAT, the reals'
# gateway (IPaddr2, one group) move and must run where ldirector runs. docs/pair.md explains
# it. Run once, on one node of the cluster.
set -eu

pcs resource create ldirector ocf:ldirector:ldirector \
    configfile=/etc/ha.d/ldirectord.cf \
    op monitor interval=20s timeout=20s \
    op start timeout=30s op stop timeout=90s op reload timeout=30s \
    clone interleave=true

pcs resource create vip ocf:heartbeat:IPaddr2 \
    ip=192.0.2.20 cidr_netmask=32 nic=eth1 \
    op monitor interval=5s timeout=20s \
    --group director

# NAT: the reals' default gateway moves with the VIP. Direct routing: leave gw out.
pcs resource create gw ocf:heartbeat:IPaddr2 \
    ip=198.51.100.1 cidr_netmask=32 nic=eth0 \
    op monitor interval=5s timeout=20s \
    --group director

pcs constraint colocation add director with ldirector-clone INFINITY
pcs constraint order start ldirector-clone then start director

# A node that comes back does not take the addresses back (a second failover for nothing).
pcs resource defaults update resource-stickiness=100

# Two nodes: no quorum to lose.
pcs property set no-quorum-policy=ignore

# Fencing: production needs a STONITH device (pcs stonith create ...; stonith-enabled is true by
# default). Without one and with stonith-enabled=true, Pacemaker starts no resource at all. A lab
# or test cluster with nothing to fence must say so explicitly:
#   pcs property set stonith-enabled=false
