/**
 * The lab's Keystone content beyond `keystone-manage bootstrap`: the `service` role and project, one service user
 * per service (roles `service` and `admin` in project `service`: `service` is what marks a service token, Nova
 * sends one with its calls to Cinder and Neutron), and the catalog: public, internal and admin endpoints in the
 * region for every service. All by REST (the openstack CLI costs ~1.7 s a call), once, into the database template;
 * each run then points the endpoints at its own ports (endpointUpdates).
 */
import { call, issueToken } from './rest';
import type { LabContext } from './service-config';

export const SERVICE_USERS = ['nova', 'glance', 'placement', 'neutron', 'cinder'] as const;

export function catalogServices(ctx: LabContext): Array<{ type: string; name: string; url: string }> {
  const at = (port: number, p = '') => `http://127.0.0.1:${port}${p}`;
  return [
    { type: 'identity', name: 'keystone', url: at(ctx.ports.keystone, '/v3') },
    { type: 'image', name: 'glance', url: at(ctx.ports.glance) },
    { type: 'placement', name: 'placement', url: at(ctx.ports.placement) },
    { type: 'compute', name: 'nova', url: at(ctx.ports.nova, '/v2.1') },
    { type: 'network', name: 'neutron', url: at(ctx.ports.neutron) },
    // Nova's [cinder] catalog_info looks up volumev3; the openstack CLI of Zed prefers block-storage.
    { type: 'volumev3', name: 'cinderv3', url: at(ctx.ports.cinder, '/v3/%(project_id)s') },
    { type: 'block-storage', name: 'cinder', url: at(ctx.ports.cinder, '/v3/%(project_id)s') },
  ];
}

export async function bootstrapCatalog(ctx: LabContext, admin: { username: string; password: string }): Promise<void> {
  const k = `${ctx.authUrl}`;
  const { id: token } = await issueToken(k, { username: admin.username, password: admin.password, projectName: 'admin' });
  const c = <T = any>(method: string, p: string, body?: unknown) => call<T>(token, method, `${k}${p}`, body);

  const roles = (await c<{ roles: Array<{ id: string; name: string }> }>('GET', '/roles')).roles;
  const roleId = async (name: string) =>
    roles.find((r) => r.name === name)?.id ?? (await c<{ role: { id: string } }>('POST', '/roles', { role: { name } })).role.id;
  const [adminRole, , , serviceRole] = await Promise.all(['admin', 'member', 'reader', 'service'].map(roleId));

  const projects = (await c<{ projects: Array<{ id: string; name: string }> }>('GET', '/projects?name=service')).projects;
  const serviceProject =
    projects[0]?.id ??
    (await c<{ project: { id: string } }>('POST', '/projects', { project: { name: 'service', domain_id: 'default', description: 'Service users' } }))
      .project.id;

  const users = (await c<{ users: Array<{ id: string; name: string }> }>('GET', '/users')).users;
  await Promise.all(
    SERVICE_USERS.map(async (name) => {
      const password = ctx.servicePasswords[name];
      let id = users.find((u) => u.name === name)?.id;
      if (id) await c('PATCH', `/users/${id}`, { user: { password } });
      else id = (await c<{ user: { id: string } }>('POST', '/users', { user: { name, password, domain_id: 'default' } })).user.id;
      for (const role of [serviceRole, adminRole]) await c('PUT', `/projects/${serviceProject}/users/${id}/roles/${role}`);
    }),
  );

  const services = (await c<{ services: Array<{ id: string; type: string; name: string }> }>('GET', '/services')).services;
  const endpoints = (await c<{ endpoints: Array<{ id: string; service_id: string }> }>('GET', '/endpoints')).endpoints;
  await Promise.all(
    catalogServices(ctx).map(async (s) => {
      let id = services.find((x) => x.type === s.type)?.id;
      if (!id) id = (await c<{ service: { id: string } }>('POST', '/services', { service: { type: s.type, name: s.name } })).service.id;
      // Endpoints carry this run's ports: replace whatever an earlier run left.
      for (const e of endpoints.filter((e) => e.service_id === id)) await c('DELETE', `/endpoints/${e.id}`);
      for (const iface of ['public', 'internal', 'admin'])
        await c('POST', '/endpoints', { endpoint: { service_id: id, interface: iface, url: s.url, region_id: ctx.region } });
    }),
  );
}

/** SQL that points the catalog's endpoints at this run's ports (the catalog itself comes with the template). */
export function endpointUpdates(ctx: LabContext): string {
  const q = (v: string) => `'${v.replace(/'/g, "''")}'`;
  return catalogServices(ctx)
    .map(
      (s) =>
        `UPDATE endpoint JOIN service ON endpoint.service_id = service.id SET endpoint.url = ${q(s.url)} ` +
        `WHERE service.type = ${q(s.type)};`,
    )
    .join('\n');
}
