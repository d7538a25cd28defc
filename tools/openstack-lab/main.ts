/**
 * `npm run lab:openstack [-- --state-dir DIR] [-- --no-libvirt]`: starts the OpenStack lab, prints its OS_*
 * variables (for the openstack CLI: `export` them; for vmigrate's config), and runs until Ctrl-C or SIGTERM.
 */
import { startOpenStackLab } from './launch';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--state-dir');
  const stateDir = at >= 0 ? args[at + 1] : undefined;
  if (at >= 0 && !stateDir) throw new Error('--state-dir needs a directory');
  const lab = await startOpenStackLab({
    stateDir,
    libvirt: !args.includes('--no-libvirt'),
    log: (s) => console.error(`[openstack-lab] ${s}`),
  });
  for (const [k, v] of Object.entries(lab.env())) console.log(`${k}=${v}`);
  console.error(
    `[openstack-lab] zones: fake=${lab.zones.fake}${lab.zones.libvirt ? ` libvirt=${lab.zones.libvirt}` : ''}; ` +
      `volume type ${lab.volumeType}; share export ${lab.shareExportDir}; logs in ${lab.stateDir}/logs. Ctrl-C stops.`,
  );
  let stopping = false;
  const shutdown = (sig: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`[openstack-lab] ${sig}: stopping`);
    lab.stop().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  setInterval(() => undefined, 1 << 30);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
