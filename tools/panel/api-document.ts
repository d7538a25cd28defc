import pino from 'pino';
import { createApp } from '../../api/app';

/**
 * The API's OpenAPI document as the API serves it at /openapi.json, taken from the route table without a Temporal
 * connection or a configuration: the routes describe themselves when they are built, and nothing here calls one.
 */
export function apiOpenApiDocument(): Record<string, unknown> {
  const app = createApp({
    client: undefined as never,
    taskQueue: 'openapi-document',
    sources: {},
    targets: undefined as never,
    identity: undefined as never,
    logger: pino({ level: 'silent' }),
  });
  return app.locals.openapi as Record<string, unknown>;
}
