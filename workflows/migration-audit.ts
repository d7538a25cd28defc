import { defineSignal } from '@temporalio/workflow';

/**
 * Who did what to a migration, as the API saw the caller: recorded in the migration's own history (a signal), so
 * the trail survives the API and shows in the migration's events. Submission is in the input (`submittedBy`) and
 * a cutover request carries its actor itself.
 */
export interface AuditEntry {
  action: 'cancel' | 'retry';
  actor: string;
  /** ISO 8601, as the API received the request. */
  at: string;
}

export const auditSignal = defineSignal<[AuditEntry]>('audit');
