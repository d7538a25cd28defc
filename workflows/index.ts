// The workflow bundle's entry point: every workflow type a vmigrate worker runs.
export { coldMigration } from './cold-migration';
export { agentMigration } from './agent-migration';
export { agentTemplate } from './agent-template';
export { warmMigration } from './warm-migration';
export { admission } from './admission';
export { liveMigration } from './live-migration';
export { hostDrain } from './host-drain';
export { preflightAssessment, sourceCheck, sourceInventory } from './source-reads';
export { targetChoices } from './target-reads';
