/**
 * Typed request bodies for the vim25 methods vmigrate calls. Each function
 * returns the inner XML of the method element (parameters in XSD order);
 * VimClient wraps it with envelope(). Parameter names follow the vim25 API
 * reference.
 */
import { el, moRefEl, raw } from './soap-envelope';
import type { MoRef } from './vim-types';

export const SERVICE_INSTANCE: MoRef = { type: 'ServiceInstance', value: 'ServiceInstance' };

export interface PropertySpec {
  type: string;
  all?: boolean;
  pathSet?: string[];
}

/** Traverses from an object of `type` through property `path` (a TraversalSpec). */
export interface TraversalSpec {
  name?: string;
  type: string;
  path: string;
  skip?: boolean;
  /** Names of other TraversalSpecs (SelectionSpec references) to apply next. */
  selectSet?: string[];
}

export interface ObjectSpec {
  obj: MoRef;
  skip?: boolean;
  selectSet?: TraversalSpec[];
}

export interface PropertyFilterSpec {
  propSet: PropertySpec[];
  objectSet: ObjectSpec[];
  reportMissingObjectsInResults?: boolean;
}

function propertySpec(p: PropertySpec): string {
  return raw('propSet', el('type', p.type) + el('all', p.all) + (p.pathSet ?? []).map((s) => el('pathSet', s)).join(''));
}

function traversalSpec(t: TraversalSpec): string {
  const next = (t.selectSet ?? []).map((n) => raw('selectSet', el('name', n))).join('');
  return raw('selectSet', el('name', t.name) + el('type', t.type) + el('path', t.path) + el('skip', t.skip ?? false) + next, 'TraversalSpec');
}

function objectSpec(o: ObjectSpec): string {
  return raw('objectSet', moRefEl('obj', o.obj) + el('skip', o.skip) + (o.selectSet ?? []).map(traversalSpec).join(''));
}

function filterSpec(s: PropertyFilterSpec): string {
  return raw(
    'specSet',
    s.propSet.map(propertySpec).join('') + s.objectSet.map(objectSpec).join('') + el('reportMissingObjectsInResults', s.reportMissingObjectsInResults),
  );
}

export const req = {
  retrieveServiceContent: () => moRefEl('_this', SERVICE_INSTANCE),

  login: (sessionManager: MoRef, userName: string, password: string) =>
    moRefEl('_this', sessionManager) + el('userName', userName) + el('password', password),

  logout: (sessionManager: MoRef) => moRefEl('_this', sessionManager),

  retrievePropertiesEx: (collector: MoRef, specSet: PropertyFilterSpec[], maxObjects?: number) =>
    moRefEl('_this', collector) + specSet.map(filterSpec).join('') + raw('options', el('maxObjects', maxObjects)),

  continueRetrievePropertiesEx: (collector: MoRef, token: string) => moRefEl('_this', collector) + el('token', token),

  cancelRetrievePropertiesEx: (collector: MoRef, token: string) => moRefEl('_this', collector) + el('token', token),

  createContainerView: (viewManager: MoRef, container: MoRef, types: string[], recursive: boolean) =>
    moRefEl('_this', viewManager) + moRefEl('container', container) + types.map((t) => el('type', t)).join('') + el('recursive', recursive),

  destroyView: (view: MoRef) => moRefEl('_this', view),

  powerOffVmTask: (vm: MoRef) => moRefEl('_this', vm),
  powerOnVmTask: (vm: MoRef) => moRefEl('_this', vm),

  shutdownGuest: (vm: MoRef) => moRefEl('_this', vm),

  /** ReconfigVM_Task with a VirtualMachineConfigSpec holding only what is given. */
  reconfigVmTask: (vm: MoRef, spec: { changeTrackingEnabled?: boolean }) =>
    moRefEl('_this', vm) + raw('spec', el('changeTrackingEnabled', spec.changeTrackingEnabled)),

  createSnapshotTask: (vm: MoRef, name: string, description: string, memory: boolean, quiesce: boolean) =>
    moRefEl('_this', vm) + el('name', name) + el('description', description) + el('memory', memory) + el('quiesce', quiesce),

  removeSnapshotTask: (snapshot: MoRef, removeChildren: boolean, consolidate?: boolean) =>
    moRefEl('_this', snapshot) + el('removeChildren', removeChildren) + el('consolidate', consolidate),

  /** EventManager.QueryEvents with an EventFilterSpec on one entity (itself only), from a time, of some event types. */
  queryEvents: (eventManager: MoRef, entity: MoRef, beginTime: string, eventTypeIds: string[]) =>
    moRefEl('_this', eventManager) +
    raw('filter', raw('entity', moRefEl('entity', entity) + el('recursion', 'self')) + raw('time', el('beginTime', beginTime)) + eventTypeIds.map((t) => el('eventTypeId', t)).join('')),

  queryChangedDiskAreas: (vm: MoRef, snapshot: MoRef | undefined, deviceKey: number, startOffset: number, changeId: string) =>
    moRefEl('_this', vm) +
    (snapshot ? moRefEl('snapshot', snapshot) : '') +
    el('deviceKey', deviceKey) +
    el('startOffset', startOffset) +
    el('changeId', changeId),
};
