import type { operations } from './generated/api-types';

/** The JSON answer of an operation (its 200 or 202), from the generated OpenAPI types. */
export type Answer<Op extends keyof operations, Status extends number = 200> = operations[Op]['responses'] extends Record<Status, { content: { 'application/json': infer T } }> ? T : never;
/** The JSON body an operation takes. */
export type RequestBody<Op extends keyof operations> = NonNullable<operations[Op]['requestBody']> extends { content: { 'application/json': infer T } } ? T : never;

export type Principal = Answer<'whoAmI'>;
export type MigrationSummary = Answer<'listMigrations'>['migrations'][number];
export type MigrationStatus = Answer<'getMigration'>;
export type MigrationEvent = Answer<'getMigrationEvents'>['events'][number];
export type Source = Answer<'listSources'>['sources'][number];
export type InventoryPage = Answer<'listSourceVms'>;
export type InventoryVm = InventoryPage['vms'][number];
export type PreflightAnswer = Answer<'preflight'>;
export type Verdict = PreflightAnswer['verdicts'][number];
export type MigrationRequest = RequestBody<'submitMigrations'>;
