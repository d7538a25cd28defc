/** Core vim25 value types and conversions from parsed XML (XNode). */
import { XNode, child, children } from './soap-reply';

/** A managed object reference, e.g. { type: 'VirtualMachine', value: 'vm-42' }. */
export interface MoRef {
  type: string;
  value: string;
}

export function moRefToString(ref: MoRef): string {
  return `${ref.type}:${ref.value}`;
}

/** Reads a ManagedObjectReference element (`<x type="Folder">group-d1</x>`). */
export function moRefOf(node: XNode | undefined): MoRef | undefined {
  if (!node) return undefined;
  const type = node.attrs.type;
  if (!type || !node.text) return undefined;
  return { type, value: node.text };
}

/** Like moRefOf but throws: for replies whose shape vim25 guarantees. */
export function requireMoRef(node: XNode | undefined, what: string): MoRef {
  const ref = moRefOf(node);
  if (!ref) throw new Error(`malformed vim25 reply: ${what} is not a managed object reference`);
  return ref;
}

/** xsd:int/long/short → number; undefined when absent or not an integer. */
export function intOf(node: XNode | undefined): number | undefined {
  if (!node || !/^-?\d+$/.test(node.text.trim())) return undefined;
  const n = Number(node.text.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** xsd:boolean → boolean; undefined when absent. */
export function boolOf(node: XNode | undefined): boolean | undefined {
  if (!node) return undefined;
  const t = node.text.trim();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  return undefined;
}

/**
 * Generic conversion of a vim25 value to plain JS, for values whose type we
 * do not model (e.g. a task result): MoRefs become MoRef, ArrayOf* become
 * arrays, data objects become objects (with `_type` from xsi:type, repeated
 * children as arrays), primitives stay strings.
 */
export function toPlain(node: XNode): unknown {
  const names = Object.keys(node.children);
  if (node.xsiType === 'ManagedObjectReference' || (names.length === 0 && node.attrs.type && node.text)) {
    return moRefOf(node) ?? node.text;
  }
  if (node.xsiType?.startsWith('ArrayOf')) {
    return names.flatMap((n) => children(node, n).map(toPlain));
  }
  if (names.length === 0) return node.text;
  const out: Record<string, unknown> = {};
  if (node.xsiType) out._type = node.xsiType;
  for (const n of names) {
    const list = children(node, n);
    out[n] = list.length === 1 ? toPlain(list[0]) : list.map(toPlain);
  }
  return out;
}

/** One object of a RetrievePropertiesEx result, its properties by path. */
export interface ObjectContent {
  obj: MoRef;
  props: Map<string, XNode>;
  /** Paths the server could not read (missingSet), with the fault type. */
  missing: Map<string, string>;
}

export function objectContentOf(node: XNode): ObjectContent {
  const obj = requireMoRef(child(node, 'obj'), 'ObjectContent.obj');
  const props = new Map<string, XNode>();
  for (const p of children(node, 'propSet')) {
    const name = child(p, 'name')?.text;
    const val = child(p, 'val');
    if (name && val) props.set(name, val);
  }
  const missing = new Map<string, string>();
  for (const m of children(node, 'missingSet')) {
    const path = child(m, 'path')?.text;
    const fault = child(child(m, 'fault'), 'fault');
    if (path) missing.set(path, fault?.xsiType ?? 'unknown');
  }
  return { obj, props, missing };
}
