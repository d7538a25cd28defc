import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';

/**
 * Custom search attributes: list and filter migrations in the API and the Temporal Web UI
 * (e.g. `MigrationState="WriteVolume" AND ProjectId="p1"`). Plain objects rather than defineSearchAttributeKey()
 * so workflow code needs nothing but types from @temporalio/common.
 */
export const MigrationState = { name: 'MigrationState', type: 'KEYWORD' } as SearchAttributeKey<'KEYWORD'>;
export const ProjectId = { name: 'ProjectId', type: 'KEYWORD' } as SearchAttributeKey<'KEYWORD'>;
export const SourceVm = { name: 'SourceVm', type: 'KEYWORD' } as SearchAttributeKey<'KEYWORD'>;
export const MigrationKind = { name: 'MigrationKind', type: 'KEYWORD' } as SearchAttributeKey<'KEYWORD'>;

/** For `temporal server start-dev --search-attribute NAME=Keyword` and `temporal operator search-attribute create`. */
export const SEARCH_ATTRIBUTE_FLAGS = [MigrationState, ProjectId, SourceVm, MigrationKind].map((k) => `${k.name}=Keyword`);
