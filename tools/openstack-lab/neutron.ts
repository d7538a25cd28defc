/**
 * Neutron server with ML2 (flat and vxlan type drivers), the router service plugin and no agents. Ports are bound
 * by the lab's stand-in mechanism driver (ml2-bind-all/), found through PYTHONPATH.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { ProcessSet } from './proc';
import { authtoken, commonDefaults, dbUrl, serviceAuth, writeIni, type LabContext } from './service-config';

export const ML2_BIND_ALL_DIR = path.join(__dirname, 'ml2-bind-all');

export function neutronConf(ctx: LabContext): string[] {
  const dir = path.join(ctx.etc, 'neutron');
  mkdirSync(dir, { recursive: true });
  const state = path.join(ctx.stateDir, 'neutron');
  mkdirSync(state, { recursive: true });
  const file = path.join(dir, 'neutron.conf');
  writeIni(file, {
    DEFAULT: {
      ...commonDefaults(ctx),
      bind_host: '127.0.0.1',
      bind_port: ctx.ports.neutron,
      api_workers: 1,
      rpc_workers: 1,
      rpc_state_report_workers: 0,
      core_plugin: 'ml2',
      service_plugins: 'router',
      auth_strategy: 'keystone',
      allow_overlapping_ips: true,
      state_path: state,
      api_paste_config: '/etc/neutron/api-paste.ini',
      // No DHCP agent, and Nova learns of port state from the binding (the ports are ACTIVE once bound).
      dhcp_agent_notification: false,
      notify_nova_on_port_status_changes: false,
      notify_nova_on_port_data_changes: false,
      l3_ha: false,
      router_distributed: false,
    },
    database: { connection: dbUrl(ctx, 'neutron') },
    keystone_authtoken: authtoken(ctx, 'neutron'),
    nova: serviceAuth(ctx, 'neutron'),
    oslo_concurrency: { lock_path: path.join(state, 'lock') },
    agent: { root_helper: 'sudo' },
  });
  const ml2 = path.join(dir, 'ml2_conf.ini');
  writeIni(ml2, {
    ml2: {
      type_drivers: 'flat,vxlan',
      tenant_network_types: 'vxlan',
      mechanism_drivers: 'lab_bind_all',
      extension_drivers: 'port_security',
    },
    ml2_type_flat: { flat_networks: '*' },
    ml2_type_vxlan: { vni_ranges: '1:1000' },
  });
  return [file, ml2];
}

export function startNeutron(procs: ProcessSet, confs: string[]): void {
  const pythonPath = [ML2_BIND_ALL_DIR, process.env.PYTHONPATH].filter(Boolean).join(':');
  procs.start('neutron-server', 'neutron-server', confs.flatMap((c) => ['--config-file', c]), { env: { PYTHONPATH: pythonPath } });
}
