/**
 * docker-compose.temporal.yml cannot run here (no Docker engine); the cluster lab runs the same thing as processes.
 * This keeps the two consistent: server, admin-tools, PostgreSQL and Web UI versions, the schema steps, the dynamic
 * config, the namespace and the search attributes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SEARCH_ATTRIBUTE_FLAGS } from '../../shared/search-attributes';
import { POSTGRES_MAJOR, TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from '../../tools/temporal-cluster/cluster-versions';
import { DYNAMIC_CONFIG_FILE, serverConfig } from '../../tools/temporal-cluster/temporal-cluster';

const compose = readFileSync(path.join(__dirname, '..', '..', 'docker-compose.temporal.yml'), 'utf8');

describe('the compose file and the Temporal cluster lab', () => {
  test('run the same Temporal version', () => {
    const images = [...compose.matchAll(/image:\s*temporalio\/(server|admin-tools):(\S+)/g)].map((m) => [m[1], m[2]]);
    expect(images.map(([name]) => name).sort()).toEqual(['admin-tools', 'admin-tools', 'server']);
    for (const [, version] of images) expect(version).toBe(TEMPORAL_SERVER_VERSION);
  });

  test('run the same PostgreSQL major and Web UI versions', () => {
    expect([...compose.matchAll(/image:\s*postgres:(\S+)/g)].map((m) => m[1])).toEqual([String(POSTGRES_MAJOR)]);
    expect([...compose.matchAll(/image:\s*temporalio\/ui:(\S+)/g)].map((m) => m[1])).toEqual([TEMPORAL_UI_VERSION]);
  });

  test('set up both databases with the postgres12 plugin, schema 0.0 then the versioned updates', () => {
    for (const db of ['temporal', 'temporal_visibility']) {
      expect(compose).toMatch(new RegExp(`--plugin postgres12 .*--db ${db} setup-schema -v 0\\.0`));
      expect(compose).toMatch(new RegExp(`--db ${db} update-schema -d /etc/temporal/schema/postgresql/v12/${db === 'temporal' ? 'temporal' : 'visibility'}/versioned`));
    }
    expect(serverConfig({ port: 5432, user: 'temporal', password: 'temporal' })).toMatch(/pluginName: "postgres12"[\s\S]*databaseName: "temporal_visibility"/);
  });

  test('use the same dynamic config file', () => {
    expect(compose).toContain('./deploy/temporal-dynamicconfig:/etc/temporal/config/dynamicconfig');
    expect(compose).toContain(`DYNAMIC_CONFIG_FILE_PATH: config/dynamicconfig/${path.basename(DYNAMIC_CONFIG_FILE)}`);
    expect(serverConfig({ port: 1, user: 'u', password: 'p' })).toContain(`filepath: "${DYNAMIC_CONFIG_FILE}"`);
  });

  test('create the default namespace and every search attribute the workflows use', () => {
    expect(compose).toMatch(/temporal operator namespace create -n default/);
    const loop = /for sa in ([A-Za-z ]+); do\s+temporal operator search-attribute create -n default --name \$\$sa --type Keyword/.exec(compose);
    expect(loop).not.toBeNull();
    expect(loop![1].trim().split(/\s+/).sort()).toEqual(SEARCH_ATTRIBUTE_FLAGS.map((f) => f.split('=')[0]).sort());
    expect(SEARCH_ATTRIBUTE_FLAGS.every((f) => f.endsWith('=Keyword'))).toBe(true);
  });
});
