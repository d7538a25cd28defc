/** One quota as Nova's `os-quota-sets/{project}/detail`, Cinder's `?usage=true` and Neutron's `/quotas/{project}/details` report it; limit -1 is unlimited. */
export interface QuotaUsage {
  limit: number;
  in_use: number;
  reserved?: number;
}

export type QuotaSet = Record<string, QuotaUsage>;

/** The quota set's entries that are usage records (Nova and Cinder put the project id beside them). */
export function usageRecords(raw: Record<string, unknown>): QuotaSet {
  const out: QuotaSet = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v && typeof v === 'object' && typeof (v as QuotaUsage).limit === 'number') {
      const q = v as QuotaUsage & { used?: number };
      out[k] = { limit: q.limit, in_use: q.in_use ?? q.used ?? 0, reserved: q.reserved ?? 0 };
    }
  }
  return out;
}
