import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeDiskImage } from '../tools/disk-image';
import { startSimulator, type Simulator } from '../tools/vcsim/launch';

/**
 * The bundled vSphere simulator as a lab source, for `npm start` without a configuration: a new user can discover,
 * preflight and migrate a VM in the first minute. It is govmomi's simulator with a few VMs of real bytes — not a
 * real vSphere, and named as such in GET /sources.
 */
export const LAB_SOURCE_ID = 'lab';
const LAB_USER = 'lab';
const LAB_PASSWORD = 'lab-simulator-not-a-secret';
const MiB = 1024 * 1024;

export interface LabSource {
  sim: Simulator;
  /** The `sources.lab` entry of the configuration. */
  sourceConfig: Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startLabSource(dir: string): Promise<LabSource> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const sim = await startSimulator({
    spec: {
      vms: [
        // Ready to go: off, one disk with a partition table, a file system and data.
        { name: 'lab-web-1', guestId: 'debian12_64Guest', numCPUs: 1, memoryMB: 1024, powerState: 'poweredOff', folder: 'lab/web', disks: [{ capacityMiB: 256 }], nics: [{ network: 'VM Network' }] },
        // Running, two disks on two datastores: a warning (it is powered off for a cold migration), or a warm one.
        { name: 'lab-db-1', guestId: 'debian12_64Guest', numCPUs: 2, memoryMB: 4096, powerState: 'poweredOn', folder: 'lab/db', changeTrackingEnabled: true, disks: [{ capacityMiB: 128 }, { capacityMiB: 64, datastore: 'LocalDS_1' }], nics: [{ network: 'VM Network', ipAddresses: ['10.10.0.21'] }] },
        // What preflight refuses: a snapshot and a raw device mapping.
        { name: 'lab-legacy-1', guestId: 'windows9Server64Guest', numCPUs: 2, memoryMB: 2048, powerState: 'poweredOff', folder: 'lab/legacy', snapshots: 1, disks: [{ capacityMiB: 64 }, { capacityMiB: 64, rdm: 'physicalMode' }], nics: [{ network: 'VM Network' }] },
      ],
      datastores: 2,
    },
    username: LAB_USER,
    password: LAB_PASSWORD,
    datastoreDir: path.join(dir, 'datastore'),
  });
  try {
    const image = path.join(dir, 'lab-web-1.img');
    await makeDiskImage(image, 256 * MiB);
    await sim.uploadDiskImage('lab-web-1', 0, image);
    await rm(image, { force: true });
    const passwordFile = path.join(dir, 'lab.password');
    await writeFile(passwordFile, LAB_PASSWORD, { mode: 0o600 });
    return {
      sim,
      sourceConfig: { url: sim.url, username: LAB_USER, passwordFile, insecure: true, lab: true },
      stop: () => sim.stop(),
    };
  } catch (err) {
    await sim.stop();
    throw err;
  }
}
