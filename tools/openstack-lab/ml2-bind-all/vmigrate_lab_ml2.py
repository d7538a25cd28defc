"""Stand-in ML2 mechanism driver of vmigrate's OpenStack lab (tools/openstack-lab), not a real network backend.

The lab runs Neutron without agents (no Open vSwitch, no Linux bridge agent, no OVN), so no real mechanism driver
can bind a port to a host. This one binds every port on its first segment as VIF_TYPE_BRIDGE, ACTIVE, on any
host: Nova's fake computes and the libvirt compute (where os-vif then makes a bridge in the lab's isolated network
namespace) can boot servers with ports. Nothing forwards traffic between those ports.
"""
from neutron_lib.api.definitions import portbindings
from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class BindAllMechanismDriver(api.MechanismDriver):
    def initialize(self):
        pass

    def bind_port(self, context):
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], portbindings.VIF_TYPE_BRIDGE,
                                {portbindings.CAP_PORT_FILTER: False},
                                status=constants.PORT_STATUS_ACTIVE)
            return
