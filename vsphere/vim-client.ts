/**
 * A minimal vim25 (vSphere Web Services) client for what vmigrate needs:
 * session, finding a VM, reading its hardware, powering it off (or shutting
 * the guest down), tasks, snapshots and Changed Block Tracking queries, and
 * datastore file URLs for the data plane.
 */
import { XNode, child, children, textAt } from './soap-reply';
import { SoapTransport, safeUrl, sdkUrl } from './soap-transport';
import { resolveTrust, type ResolvedTrust } from './source-tls';
import { req, PropertyFilterSpec } from './vim-requests';
import { VimError, VimFaultError, VimTaskTimeoutError, VmNotFoundError, faultError } from './vim-faults';
import { MoRef, ObjectContent, intOf, objectContentOf, requireMoRef, moRefOf, toPlain, moRefToString } from './vim-types';
import { PowerState, VM_HARDWARE_PATHS, VmHardware, devicesOf, disksOf, isNic, networkRefOf, parseDatastorePath, parsePowerState, vmHardwareFrom } from './vm-hardware';

import { INVENTORY_VM_PATHS, inventoryVmFrom, type InventoryLookups, type InventoryVm } from './vm-inventory';

export type { MoRef } from './vim-types';

export interface VimConnectOptions {
  /** vCenter URL: https://vc.example.com or https://vc.example.com/sdk */
  url: string;
  username: string;
  password: string;
  /** Accept self-signed / untrusted TLS certificates. */
  insecure?: boolean;
  /** Trust a CA file's certificates, or pin the server's certificate by thumbprint (vsphere/source-tls.ts). */
  caPem?: string;
  thumbprint?: string;
  /** Per-request HTTP timeout (default 60 s). */
  timeoutMs?: number;
}

/** The parts of ServiceContent the client uses. */
export interface ServiceContent {
  rootFolder: MoRef;
  propertyCollector: MoRef;
  viewManager: MoRef;
  sessionManager: MoRef;
  /** Absent on endpoints without an event manager (then power history cannot be asked). */
  eventManager?: MoRef;
  apiVersion: string;
  apiType: string;
  instanceUuid?: string;
  /** The product and build, e.g. "VMware vCenter Server 8.0.2 build-22385739". */
  fullName?: string;
}

const DEFAULT_TASK_TIMEOUT_MS = 10 * 60_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class VimClient {
  private constructor(
    private readonly transport: SoapTransport,
    readonly serviceContent: ServiceContent,
    /** What this session trusts, for other clients of the same server (nbdkit reading the datastore). */
    readonly trust: ResolvedTrust = { rejectUnauthorized: true, pinned: false },
  ) {}

  /** Connects and logs in. Throws InvalidLoginError for bad credentials, VimConnectionError if unreachable. */
  static async login(opts: VimConnectOptions): Promise<VimClient> {
    const trust = await resolveTrust(sdkUrl(opts.url), opts);
    const transport = new SoapTransport({ url: opts.url, insecure: opts.insecure, timeoutMs: opts.timeoutMs, ca: trust.ca, pinned: trust.pinned });
    const sc = child(await transport.call('RetrieveServiceContent', req.retrieveServiceContent()), 'returnval');
    const content: ServiceContent = {
      rootFolder: requireMoRef(child(sc, 'rootFolder'), 'rootFolder'),
      propertyCollector: requireMoRef(child(sc, 'propertyCollector'), 'propertyCollector'),
      viewManager: requireMoRef(child(sc, 'viewManager'), 'viewManager'),
      sessionManager: requireMoRef(child(sc, 'sessionManager'), 'sessionManager'),
      eventManager: moRefOf(child(sc, 'eventManager')),
      apiVersion: textAt(sc, 'about.apiVersion') ?? '6.5',
      apiType: textAt(sc, 'about.apiType') ?? '',
      instanceUuid: textAt(sc, 'about.instanceUuid'),
      fullName: textAt(sc, 'about.fullName'),
    };
    transport.apiVersion = content.apiVersion;
    await transport.call('Login', req.login(content.sessionManager, opts.username, opts.password));
    if (!transport.sessionCookie) {
      throw new VimError(`vSphere at ${safeUrl(transport.url)} accepted the login but set no session cookie`, false);
    }
    return new VimClient(transport, content, trust);
  }

  /** Ends the session. Safe to call twice; an already expired session is not an error. */
  async logout(): Promise<void> {
    if (!this.transport.sessionCookie) return;
    try {
      await this.transport.call('Logout', req.logout(this.serviceContent.sessionManager));
    } catch (err) {
      if (!(err instanceof VimFaultError && err.faultType === 'NotAuthenticated')) throw err;
    } finally {
      this.transport.clearSession();
    }
  }

  /** The session cookie value (verbatim, possibly quoted), so data-plane requests can send `vmware_soap_session=<value>`. */
  get sessionCookie(): string {
    return this.transport.sessionCookie;
  }

  /** The SOAP endpoint in use (…/sdk), without credentials. */
  get url(): string {
    return this.transport.url;
  }

  /** Low-level: invokes any vim25 method with a hand-built body; returns the `<Method>Response` element. */
  call(method: string, innerXml: string): Promise<XNode> {
    return this.transport.call(method, innerXml);
  }

  /**
   * RetrievePropertiesEx, following ContinueRetrievePropertiesEx tokens until
   * every object is returned. `maxObjects` is the page size asked of the server.
   */
  async retrieveProperties(specSet: PropertyFilterSpec[], opts: { maxObjects?: number } = {}): Promise<ObjectContent[]> {
    const pc = this.serviceContent.propertyCollector;
    const out: ObjectContent[] = [];
    let result = child(await this.call('RetrievePropertiesEx', req.retrievePropertiesEx(pc, specSet, opts.maxObjects)), 'returnval');
    for (;;) {
      for (const o of children(result, 'objects')) out.push(objectContentOf(o));
      const token = textAt(result, 'token');
      if (!token) return out;
      result = child(await this.call('ContinueRetrievePropertiesEx', req.continueRetrievePropertiesEx(pc, token)), 'returnval');
    }
  }

  /** Properties of one object; maps a missing object to VmNotFoundError when it is a VM. */
  private async getProperties(obj: MoRef, pathSet: string[]): Promise<Map<string, XNode>> {
    try {
      const [content] = await this.retrieveProperties([{ propSet: [{ type: obj.type, pathSet }], objectSet: [{ obj }] }]);
      if (!content) throw new VimFaultError('ManagedObjectNotFound', `${moRefToString(obj)} not found`, { retryable: false });
      return content.props;
    } catch (err) {
      if (obj.type === 'VirtualMachine' && err instanceof VimFaultError && err.faultType === 'ManagedObjectNotFound') {
        throw new VmNotFoundError({ moref: obj.value });
      }
      throw err;
    }
  }

  /** Finds a VM by moref (e.g. "vm-42"; takes precedence) or by exact name. Throws VmNotFoundError if absent. */
  async findVm(ref: { name?: string; moref?: string }): Promise<MoRef> {
    if (ref.moref) {
      const vm: MoRef = { type: 'VirtualMachine', value: ref.moref };
      await this.getProperties(vm, ['name']); // existence check
      return vm;
    }
    if (!ref.name) throw new VimFaultError('InvalidArgument', 'findVm needs a name or a moref', { retryable: false });

    const matches = (await this.listVms()).filter((v) => v.name === ref.name);
    if (matches.length === 0) throw new VmNotFoundError({ name: ref.name });
    if (matches.length > 1) {
      const ids = matches.map((m) => m.moref.value).join(', ');
      throw new VimFaultError('AmbiguousName', `VM name "${ref.name}" is ambiguous (${ids}); use a moref`, { retryable: false });
    }
    return matches[0].moref;
  }

  /** Every VM (and template) of the inventory with its name, via a container view. */
  async listVms(opts: { maxObjects?: number } = {}): Promise<Array<{ moref: MoRef; name: string }>> {
    const view = requireMoRef(
      child(
        await this.call('CreateContainerView', req.createContainerView(this.serviceContent.viewManager, this.serviceContent.rootFolder, ['VirtualMachine'], true)),
        'returnval',
      ),
      'CreateContainerView result',
    );
    try {
      const objects = await this.retrieveProperties(
        [
          {
            propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }],
            objectSet: [{ obj: view, skip: true, selectSet: [{ name: 'traverseView', type: 'ContainerView', path: 'view', skip: false }] }],
          },
        ],
        { maxObjects: opts.maxObjects ?? 500 },
      );
      return objects.map((o) => ({ moref: o.obj, name: o.props.get('name')?.text ?? '' }));
    } finally {
      await this.call('DestroyView', req.destroyView(view)).catch(() => undefined);
    }
  }

  /**
   * Every VM and template with what the inventory shows of it, in one PropertyCollector pass over a ContainerView
   * (with the folders, datacenters, hosts and networks that name their placement), paged by the server.
   */
  async readInventory(opts: { maxObjects?: number } = {}): Promise<InventoryVm[]> {
    const containerTypes = ['VirtualMachine', 'Folder', 'Datacenter', 'HostSystem', 'Network', 'DistributedVirtualPortgroup', 'VirtualApp'];
    const view = requireMoRef(
      child(await this.call('CreateContainerView', req.createContainerView(this.serviceContent.viewManager, this.serviceContent.rootFolder, containerTypes, true)), 'returnval'),
      'CreateContainerView result',
    );
    try {
      const objects = await this.retrieveProperties(
        [
          {
            propSet: [
              { type: 'VirtualMachine', pathSet: INVENTORY_VM_PATHS },
              ...containerTypes.filter((t) => t !== 'VirtualMachine').map((type) => ({ type, pathSet: ['name', 'parent'] })),
            ],
            objectSet: [{ obj: view, skip: true, selectSet: [{ name: 'traverseView', type: 'ContainerView', path: 'view', skip: false }] }],
          },
        ],
        { maxObjects: opts.maxObjects ?? 500 },
      );
      const lookups: InventoryLookups = { objects: new Map() };
      for (const o of objects) {
        if (o.obj.type === 'VirtualMachine') continue;
        (lookups.objects as Map<string, { name: string; parent?: MoRef; type: string }>).set(moRefToString(o.obj), {
          name: o.props.get('name')?.text ?? o.obj.value,
          parent: moRefOf(o.props.get('parent')),
          type: o.obj.type,
        });
      }
      // A VM being created or without a readable configuration is left out rather than failing the whole listing.
      return objects.filter((o) => o.obj.type === 'VirtualMachine' && o.props.has('config.hardware.device')).map((o) => inventoryVmFrom(o.obj, o.props, lookups));
    } finally {
      await this.call('DestroyView', req.destroyView(view)).catch(() => undefined);
    }
  }

  async getVmHardware(vm: MoRef): Promise<VmHardware> {
    const props = await this.getProperties(vm, VM_HARDWARE_PATHS);
    const dc = await this.datacenterOf(moRefOf(props.get('parent')) ?? moRefOf(props.get('parentVApp')), vm);

    // Distributed port groups are named by a separate object: look them up together.
    const refs = new Map<string, MoRef>();
    for (const dev of devicesOf(props).filter(isNic)) {
      const ref = networkRefOf(dev);
      if (ref) refs.set(moRefToString(ref), ref);
    }
    const names = new Map<string, string>();
    if (refs.size > 0) {
      const byType = new Map<string, MoRef[]>();
      for (const r of refs.values()) byType.set(r.type, [...(byType.get(r.type) ?? []), r]);
      const objects = await this.retrieveProperties([
        { propSet: [...byType.keys()].map((type) => ({ type, pathSet: ['name'] })), objectSet: [...refs.values()].map((obj) => ({ obj })) },
      ]);
      for (const o of objects) {
        const name = o.props.get('name')?.text;
        if (name) names.set(moRefToString(o.obj), name);
      }
    }
    return vmHardwareFrom(vm, props, dc, names);
  }

  /** Walks `parent` up to the Datacenter; returns its name and inventory path. */
  private async datacenterOf(start: MoRef | undefined, vm: MoRef): Promise<{ name: string; path: string }> {
    let cur = start;
    let dcName: string | undefined;
    const pathNames: string[] = [];
    for (let depth = 0; cur && depth < 64; depth++) {
      const props = await this.getProperties(cur, ['name', 'parent']);
      const parent = moRefOf(props.get('parent'));
      const name = props.get('name')?.text ?? '';
      if (cur.type === 'Datacenter') dcName = name;
      // Path below the root folder (which has no parent): folders above the datacenter, then its name.
      if (dcName !== undefined && parent) pathNames.unshift(name);
      cur = parent;
    }
    if (dcName === undefined) throw new VimError(`VM ${vm.value} is not inside a datacenter`, false);
    return { name: dcName, path: pathNames.join('/') };
  }

  /**
   * When the VM was first powered on at or after `since` (ISO 8601), from vCenter's events (VmPoweredOnEvent), or
   * undefined if it was not. Throws when the endpoint keeps no events: then nobody can say, and callers must assume
   * it may have run.
   */
  async poweredOnSince(vm: MoRef, since: string): Promise<string | undefined> {
    const em = this.serviceContent.eventManager;
    if (!em) throw new VimError('this vSphere endpoint has no event manager: its power history cannot be read', false);
    const reply = await this.call('QueryEvents', req.queryEvents(em, vm, since, ['VmPoweredOnEvent']));
    const times = children(reply, 'returnval')
      .map((e) => textAt(e, 'createdTime'))
      .filter((t): t is string => !!t && Date.parse(t) >= Date.parse(since))
      .sort((a, b) => Date.parse(a) - Date.parse(b));
    return times[0];
  }

  async getPowerState(vm: MoRef): Promise<PowerState> {
    const props = await this.getProperties(vm, ['runtime.powerState']);
    return parsePowerState(props.get('runtime.powerState')?.text);
  }

  /** Hard power-off (PowerOffVM_Task) and wait. An already-off VM fails with faultType InvalidPowerState. */
  async powerOff(vm: MoRef, opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.runVmTask('PowerOffVM_Task', vm, req.powerOffVmTask(vm), opts);
  }

  /** PowerOnVM_Task + wait: used to give a source back its power state when a migration is cancelled. */
  async powerOn(vm: MoRef, opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.runVmTask('PowerOnVM_Task', vm, req.powerOnVmTask(vm), opts);
  }

  /**
   * Guest OS shutdown (ShutdownGuest). Returns once vSphere accepted the request, not when the guest is off:
   * poll the power state and fall back to powerOff. Faults: ToolsUnavailable (no VMware Tools running),
   * InvalidPowerState (not powered on).
   */
  async shutdownGuest(vm: MoRef): Promise<void> {
    try {
      await this.call('ShutdownGuest', req.shutdownGuest(vm));
    } catch (err) {
      if (err instanceof VimFaultError && err.faultType === 'ManagedObjectNotFound') throw new VmNotFoundError({ moref: vm.value });
      throw err;
    }
  }

  /** Turns Changed Block Tracking on or off (ReconfigVM_Task with changeTrackingEnabled) and waits. */
  async setChangeTracking(vm: MoRef, enabled: boolean, opts: { timeoutMs?: number } = {}): Promise<void> {
    await this.runVmTask('ReconfigVM_Task', vm, req.reconfigVmTask(vm, { changeTrackingEnabled: enabled }), opts);
  }

  /** CreateSnapshot_Task without memory and without quiescing; returns the new VirtualMachineSnapshot. */
  async createSnapshot(vm: MoRef, name: string, description: string, opts: { timeoutMs?: number } = {}): Promise<MoRef> {
    const result = await this.runVmTask('CreateSnapshot_Task', vm, req.createSnapshotTask(vm, name, description, false, false), opts);
    const ref = result as MoRef | undefined;
    if (!ref || typeof ref !== 'object' || typeof ref.value !== 'string' || ref.type !== 'VirtualMachineSnapshot') {
      throw new VimError(`CreateSnapshot_Task on ${vm.value} returned no snapshot reference`, false);
    }
    return { type: ref.type, value: ref.value };
  }

  /** RemoveSnapshot_Task (children kept, disks consolidated) and wait. */
  async removeSnapshot(snapshot: MoRef, opts: { timeoutMs?: number } = {}): Promise<void> {
    const task = requireMoRef(
      child(await this.call('RemoveSnapshot_Task', req.removeSnapshotTask(snapshot, false, true)), 'returnval'),
      'RemoveSnapshot_Task result',
    );
    await this.waitForTask(task, opts);
  }

  /** The VM's snapshots (snapshot.rootSnapshotList flattened, parents before children); [] when it has none. */
  async listSnapshots(vm: MoRef): Promise<Array<{ snapshot: MoRef; name: string; description: string; createTime: string }>> {
    const info = (await this.getProperties(vm, ['snapshot'])).get('snapshot');
    const out: Array<{ snapshot: MoRef; name: string; description: string; createTime: string }> = [];
    const walk = (trees: XNode[]) => {
      for (const t of trees) {
        out.push({
          snapshot: requireMoRef(child(t, 'snapshot'), 'VirtualMachineSnapshotTree.snapshot'),
          name: textAt(t, 'name') ?? '',
          description: textAt(t, 'description') ?? '',
          createTime: textAt(t, 'createTime') ?? '',
        });
        walk(children(t, 'childSnapshotList'));
      }
    };
    walk(children(info, 'rootSnapshotList'));
    return out;
  }

  /**
   * The disks of a snapshot (its config.hardware.device), shaped as getVmHardware's: `flatFileName` is the
   * snapshot's frozen base file and `changeId` the snapshot's change id (unset when CBT was off).
   */
  async getSnapshotDisks(snapshot: MoRef): Promise<VmHardware['disks']> {
    const props = await this.getProperties(snapshot, ['config.hardware.device']);
    if (!props.has('config.hardware.device')) {
      throw new VimError(`snapshot ${snapshot.value} has no readable configuration`, false);
    }
    return disksOf(props);
  }

  /**
   * One QueryChangedDiskAreas call: the changed areas of one window [startOffset, startOffset+length), which
   * may end before the disk does (see queryAllChangedAreas in changed-areas.ts for the loop). `snapshot`
   * unset compares against the current disk, which vSphere allows only for a powered-off VM. changeId "*"
   * returns the allocated areas. Faults come as VimFaultError (e.g. InvalidArgument for a stale change id
   * or a startOffset at or past the capacity, FileFault for unusable tracking data).
   */
  async queryChangedDiskAreas(
    vm: MoRef,
    snapshot: MoRef | undefined,
    deviceKey: number,
    startOffset: number,
    changeId: string,
  ): Promise<{ startOffset: number; length: number; changedArea: Array<{ start: number; length: number }> }> {
    const rv = child(
      await this.call('QueryChangedDiskAreas', req.queryChangedDiskAreas(vm, snapshot, deviceKey, startOffset, changeId)),
      'returnval',
    );
    const int = (node: XNode | undefined, what: string): number => {
      const n = intOf(node);
      if (n === undefined) throw new VimError(`malformed QueryChangedDiskAreas reply: ${what} is missing or not an integer`, false);
      return n;
    };
    return {
      startOffset: int(child(rv, 'startOffset'), 'startOffset'),
      length: int(child(rv, 'length'), 'length'),
      changedArea: children(rv, 'changedArea').map((a) => ({ start: int(child(a, 'start'), 'changedArea.start'), length: int(child(a, 'length'), 'changedArea.length') })),
    };
  }

  private async runVmTask(method: string, vm: MoRef, body: string, opts: { timeoutMs?: number }): Promise<unknown> {
    let task: MoRef;
    try {
      task = requireMoRef(child(await this.call(method, body), 'returnval'), `${method} result`);
    } catch (err) {
      if (err instanceof VimFaultError && err.faultType === 'ManagedObjectNotFound') throw new VmNotFoundError({ moref: vm.value });
      throw err;
    }
    return this.waitForTask(task, opts);
  }

  /**
   * Polls Task.info until success (returns info.result as plain JS, see
   * toPlain) or error (throws the task's fault as VimFaultError).
   */
  async waitForTask(task: MoRef, opts: { timeoutMs?: number } = {}): Promise<unknown> {
    const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS);
    let delay = 50;
    for (;;) {
      const info = (await this.getProperties(task, ['info'])).get('info');
      const state = textAt(info, 'state');
      if (state === 'success') {
        const result = child(info, 'result');
        return result ? toPlain(result) : undefined;
      }
      if (state === 'error') throw taskError(task, info);
      if (Date.now() + delay > deadline) {
        throw new VimTaskTimeoutError(`task ${task.value} (${describeTask(info)}) still ${state ?? 'unknown'} after ${opts.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS} ms`);
      }
      await sleep(delay);
      delay = Math.min(1000, Math.round(delay * 1.5));
    }
  }

  /** https://host/folder/<path>?dcPath=..&dsName=.. for a datastore path like "[LocalDS_0] vm/vm-flat.vmdk". */
  datastoreFileUrl(datastorePath: string, datacenter: string): string {
    const { datastore, path } = parseDatastorePath(datastorePath);
    const base = new URL(this.transport.url);
    const encoded = path.split('/').map(encodeURIComponent).join('/');
    return `${base.origin}/folder/${encoded}?dcPath=${encodeURIComponent(datacenter)}&dsName=${encodeURIComponent(datastore)}`;
  }
}

function describeTask(info: XNode | undefined): string {
  const what = textAt(info, 'descriptionId') ?? 'task';
  const entity = textAt(info, 'entityName');
  return entity ? `${what} on ${entity}` : what;
}

/** The fault of a failed task (TaskInfo.error is a LocalizedMethodFault). */
function taskError(task: MoRef, info: XNode | undefined): VimFaultError {
  const err = child(info, 'error');
  const fault = child(err, 'fault');
  const type = fault?.xsiType ?? 'SystemError';
  const message = textAt(err, 'localizedMessage') || type;
  return faultError(type, `task ${task.value} (${describeTask(info)}) failed: ${message}`, fault);
}
