/**
 * Parsing of vim25 SOAP replies into a small, uniform tree (XNode).
 *
 * Why a normalised tree instead of fast-xml-parser's raw output:
 *  - every child element is parsed as an array (isArray), so a property that
 *    happens to hold one element (one VM, one disk) has the same shape as one
 *    holding many — the classic single-element-array bug cannot happen;
 *  - the xsi:type attribute is resolved by namespace URI, not by the literal
 *    prefix "xsi": vcsim writes `_XMLSchema-instance:type` with the prefix
 *    declared on each element, a real vCenter writes `xsi:type`;
 *  - tag values stay strings (parseTagValue:false): changeIds, UUIDs or
 *    "0123" must not be coerced to numbers; callers convert per vim25 type.
 */
import { XMLParser } from 'fast-xml-parser';

export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';

export interface XNode {
  /** Local element name (namespace prefix removed). */
  name: string;
  /** Text content, '' when the element has none. */
  text: string;
  /** Attributes by qualified name as written (xmlns declarations excluded). */
  attrs: Record<string, string>;
  /** Local part of the xsi:type value (e.g. "VirtualDisk", "string"), whatever prefix carried it. */
  xsiType?: string;
  /** Child elements by local name, always arrays, in document order per name. */
  children: Record<string, XNode[]>;
}

const ATTR = '@_';
const TEXT = '#text';

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: ATTR,
  textNodeName: TEXT,
  removeNSPrefix: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false, // keep significant whitespace (e.g. labels, passwords echoed in faults)
  // Every element is an array: see the module comment.
  isArray: (_name: string, _jpath: unknown, _isLeaf: boolean, isAttribute: boolean) => !isAttribute,
  // vim25 nests deeply but far below this; keep the guard against hostile input.
  maxNestedTags: 200,
  processEntities: true,
  htmlEntities: false,
});

function localName(qname: string): string {
  const i = qname.indexOf(':');
  return i < 0 ? qname : qname.slice(i + 1);
}

type Raw = Record<string, unknown>;

function normalize(name: string, raw: unknown, scope: ReadonlyMap<string, string>): XNode {
  const node: XNode = { name: localName(name), text: '', attrs: {}, children: {} };
  if (raw === null || raw === undefined) return node;
  if (typeof raw !== 'object') {
    node.text = String(raw);
    return node;
  }
  const obj = raw as Raw;
  // Namespace declarations first: they apply to this element's own attributes.
  let inner = scope;
  for (const key of Object.keys(obj)) {
    if (key.startsWith(`${ATTR}xmlns:`)) {
      if (inner === scope) inner = new Map(scope);
      (inner as Map<string, string>).set(key.slice(ATTR.length + 6), String(obj[key]));
    }
  }
  const texts: string[] = [];
  for (const [key, value] of Object.entries(obj)) {
    if (key === TEXT) {
      texts.push(String(value));
    } else if (key.startsWith(ATTR)) {
      const attr = key.slice(ATTR.length);
      if (attr === 'xmlns' || attr.startsWith('xmlns:')) continue;
      node.attrs[attr] = String(value);
      const colon = attr.indexOf(':');
      if (colon > 0 && attr.slice(colon + 1) === 'type' && inner.get(attr.slice(0, colon)) === XSI_NS) {
        node.xsiType = localName(String(value));
      }
    } else {
      const items = Array.isArray(value) ? value : [value];
      const local = localName(key);
      const list = node.children[local] ?? (node.children[local] = []);
      for (const item of items) list.push(normalize(key, item, inner));
    }
  }
  node.text = texts.join('').trim() === '' && Object.keys(node.children).length > 0 ? '' : texts.join('');
  return node;
}

/** Parses an XML document into its root XNode. Throws on malformed XML. */
export function parseXml(xml: string): XNode {
  const raw = parser.parse(xml) as Raw;
  const rootKey = Object.keys(raw).find((k) => !k.startsWith('?') && !k.startsWith(ATTR));
  if (!rootKey) throw new Error('empty XML document');
  const value = raw[rootKey];
  return normalize(rootKey, Array.isArray(value) ? value[0] : value, new Map([['xml', 'http://www.w3.org/XML/1998/namespace']]));
}

/** First child named `name`, if any. */
export function child(node: XNode | undefined, name: string): XNode | undefined {
  return node?.children[name]?.[0];
}

/** All children named `name` (empty array when none). */
export function children(node: XNode | undefined, name: string): XNode[] {
  return node?.children[name] ?? [];
}

/** Follows a dotted path of child names, e.g. path(dev, 'backing.fileName'). */
export function path(node: XNode | undefined, dotted: string): XNode | undefined {
  let cur = node;
  for (const part of dotted.split('.')) cur = child(cur, part);
  return cur;
}

/** Text of the child at `dotted`, or undefined when absent. */
export function textAt(node: XNode | undefined, dotted: string): string | undefined {
  return path(node, dotted)?.text;
}

export interface SoapFault {
  faultCode: string;
  faultString: string;
  /** vim25 fault type from the detail element, e.g. "InvalidLogin"; undefined for a bare SOAP fault. */
  faultType?: string;
  detail?: XNode;
}

export interface SoapReply {
  /** The element inside soapenv:Body (e.g. RetrievePropertiesExResponse). */
  body?: XNode;
  fault?: SoapFault;
}

/** vim25 fault type of a fault object: its xsi:type, else its element name without the "Fault" suffix. */
export function faultTypeOf(node: XNode): string {
  return node.xsiType ?? node.name.replace(/Fault$/, '');
}

/** Parses a SOAP envelope; throws if it is not one. */
export function parseSoapReply(xml: string): SoapReply {
  const env = parseXml(xml);
  if (env.name !== 'Envelope') throw new Error(`not a SOAP envelope (root element ${env.name})`);
  const body = child(env, 'Body');
  if (!body) throw new Error('SOAP envelope without Body');
  const fault = child(body, 'Fault');
  if (fault) {
    const detailNode = child(fault, 'detail');
    const first = detailNode ? Object.values(detailNode.children)[0]?.[0] : undefined;
    return {
      fault: {
        faultCode: textAt(fault, 'faultcode') ?? '',
        faultString: textAt(fault, 'faultstring') ?? '',
        faultType: first ? faultTypeOf(first) : undefined,
        detail: first,
      },
    };
  }
  const first = Object.values(body.children)[0]?.[0];
  return { body: first };
}
