/**
 * Builds what the cluster lab runs that the machine lacks: the Temporal server and its sql tool, and the Temporal Web
 * UI server, from their Go modules at the compose file's versions (scripts/setup-temporal-cluster.sh runs this; it
 * returns at once when both are built).
 */
import { ensureTemporalServerBuild } from './temporal-server-build';
import { ensureTemporalWebUiBuild } from './temporal-web-ui';

async function main(): Promise<void> {
  const log = (line: string) => console.log(`[setup] ${line}`);
  await ensureTemporalServerBuild(log);
  await ensureTemporalWebUiBuild(log);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
