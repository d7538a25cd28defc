import { QuotaExceededError, TargetAuthError, TargetNotFoundError, TargetRequestError } from '../target-errors';

/**
 * OpenStack's error answers, turned into the product's typed errors. Every service wraps its message differently:
 * Nova and Cinder `{"forbidden": {"message", "code"}}` (the key names the kind), Neutron
 * `{"NeutronError": {"type", "message", "detail"}}`, Keystone `{"error": {"code", "message", "title"}}`.
 */

export interface OpenStackFault {
  status: number;
  /** Nova/Cinder's wrapper key (overLimit, forbidden, badRequest, itemNotFound, …) or Neutron's type (OverQuota, …). */
  kind?: string;
  message: string;
}

/** An answer that is none of the typed kinds: transient (5xx, 409 conflicts while a resource settles) or unexpected. */
export class OpenStackHttpError extends Error {
  override name = 'OpenStackHttpError';
  constructor(
    message: string,
    readonly fault: OpenStackFault,
  ) {
    super(message);
  }
}

export function parseFault(status: number, bodyText: string): OpenStackFault {
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return { status, message: bodyText.trim().slice(0, 500) || `HTTP ${status}` };
  }
  if (body && typeof body === 'object') {
    const entries = Object.entries(body as Record<string, unknown>);
    if (entries.length === 1 && entries[0][1] && typeof entries[0][1] === 'object') {
      const [key, inner] = entries[0] as [string, Record<string, unknown>];
      const message = typeof inner.message === 'string' ? inner.message : JSON.stringify(inner);
      const detail = typeof inner.detail === 'string' && inner.detail ? ` (${inner.detail})` : '';
      const kind = key === 'NeutronError' && typeof inner.type === 'string' ? inner.type : key;
      return { status, kind, message: message + detail };
    }
    const m = (body as Record<string, unknown>).message;
    if (typeof m === 'string') return { status, message: m };
  }
  return { status, message: bodyText.slice(0, 500) };
}

/** Which quota a refusal names, from the texts Nova, Cinder and Neutron use. */
export function quotaName(message: string): string | undefined {
  const m =
    /exceeds allowed (\w+) quota/i.exec(message) ?? // Cinder: "Requested volume or snapshot exceeds allowed gigabytes quota."
    /exceeded for quota '?(\w+)'?/i.exec(message) ?? // Cinder: "Maximum number of volumes allowed (1) exceeded for quota 'volumes'."
    /Quota exceeded for resources: \['?(\w+)'?/i.exec(message) ?? // Neutron: "Quota exceeded for resources: ['port']."
    /Quota exceeded for (\w+)/i.exec(message); // Nova: "Quota exceeded for cores: Requested 2, but already used 0 of 1 cores"
  return m?.[1];
}

/**
 * The typed error for an answer, or an OpenStackHttpError. `what` says what was being done, for the message
 * ("creating volume mig-1-disk0 in project p1").
 */
export function faultError(fault: OpenStackFault, what: string): Error {
  const text = `${what}: ${fault.message}`;
  const quota = quotaName(fault.message);
  if (fault.status === 413 || fault.kind === 'OverQuota' || (fault.status === 403 && /quota/i.test(fault.message))) {
    return new QuotaExceededError(`${text}${quota ? ` (quota: ${quota})` : ''}; raise the project's quota or free some`, quota);
  }
  if (fault.status === 401) return new TargetAuthError(`${text}; check the target's credentials`);
  if (fault.status === 403) return new TargetAuthError(`${text}; the target's user lacks the role or policy for this in the project`);
  if (fault.status === 400) return new TargetRequestError(text);
  if (fault.status === 404) return new TargetNotFoundError(text);
  return new OpenStackHttpError(`${text} (HTTP ${fault.status})`, fault);
}
