/**
 * Building vim25 SOAP 1.1 request envelopes from strings.
 *
 * Requests are small and few, so plain templates with strict escaping are
 * clearer than an XML builder. Element order follows the vim25 XSD sequences:
 * a real vCenter rejects out-of-order elements even though vcsim does not.
 */
import type { MoRef } from './vim-types';

export const VIM25_NS = 'urn:vim25';
export const XSI_PREFIXED_NS = 'http://www.w3.org/2001/XMLSchema-instance';

/** Escapes text for element content and attribute values. Drops characters XML 1.0 cannot carry. */
export function xmlEscape(value: string): string {
  return value
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** `<name>escaped text</name>`; omitted entirely when value is undefined. */
export function el(name: string, value: string | number | boolean | undefined): string {
  if (value === undefined) return '';
  return `<${name}>${xmlEscape(String(value))}</${name}>`;
}

/** `<name>` wrapping already-built XML children. */
export function raw(name: string, innerXml: string, xsiType?: string): string {
  const type = xsiType ? ` xsi:type="${xmlEscape(xsiType)}"` : '';
  return `<${name}${type}>${innerXml}</${name}>`;
}

/** A ManagedObjectReference element: `<name type="Folder">group-d1</name>`. */
export function moRefEl(name: string, ref: MoRef): string {
  return `<${name} type="${xmlEscape(ref.type)}">${xmlEscape(ref.value)}</${name}>`;
}

/** Wraps a method call (`<Method xmlns="urn:vim25">…</Method>`) in a SOAP envelope. */
export function envelope(method: string, innerXml: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"' +
    ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"' +
    ` xmlns:xsi="${XSI_PREFIXED_NS}">` +
    `<soapenv:Body><${method} xmlns="${VIM25_NS}">${innerXml}</${method}></soapenv:Body>` +
    '</soapenv:Envelope>'
  );
}
