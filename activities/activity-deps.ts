import type { Logger } from 'pino';
import type { VmigrateConfig } from '../config/vmigrate-config';
import type { TargetDriver } from '../target/target-driver';

/** What activities are built from (samples-typescript's activities-dependency-injection pattern). */
export interface ActivityDeps {
  config: VmigrateConfig;
  target: TargetDriver;
  logger: Logger;
}
