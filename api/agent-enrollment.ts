import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { VmigrateConfig } from '../config/vmigrate-config';
import type { AgentMigrationInput } from '../shared/migration-input';
import { MigrationState, ProjectId } from '../shared/search-attributes';
import { hostTaskQueue } from '../shared/task-queues';
import { discoveredMachineSchema } from '../source/agent/discovered-machine';
import { agentCertificate, agentSessionKey } from '../source/agent/agent-trust';
import { machineIdentity } from '../source/agent/machine-identity';
import { signSessionToken } from '../source/agent/session-token';
import type { AdmissionLimits } from '../workflows/admission-ledger';
import { agentEnrolledSignal } from '../workflows/agent-migration-state';
import { checkEnrollmentKey, EnrollmentRefused } from './agent-templates';
import { admit } from './migration-submission';
import { HttpProblem, sendProblem } from './problem';

/**
 * The agent endpoint: HTTPS on a port of its own, with the certificate the ISO pins, and one route. An agent
 * presents its ISO's enrollment key and what it found; the migration of that machine is started (or joined, after a
 * reboot) and the agent gets a session token for the gateway. Nothing else of the API is reachable here.
 */


export interface EnrollmentDeps {
  client: Client;
  taskQueue: string;
  agents: NonNullable<VmigrateConfig['agents']>;
  logger: Logger;
  /** Admission's limits (the deployment's): a machine's migration counts against its project's quotas. */
  limits?: AdmissionLimits;
}

export const agentMigrationId = (machineId: string) => `agent-${machineId}`;

export function createEnrollmentApp(deps: EnrollmentDeps): express.Express {
  const { fingerprint } = agentCertificate(deps.agents);
  const sessionKey = agentSessionKey(deps.agents);
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '256kb' }));
  app.post('/agent/v1/enroll', (req: Request, res: Response, next: NextFunction) => {
    enroll(req)
      .then((body) => res.json(body))
      .catch(next);
  });

  async function enroll(req: Request) {
    const auth = req.headers.authorization ?? '';
    const key = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
    let template;
    try {
      template = await checkEnrollmentKey(deps.client, key);
    } catch (err) {
      if (err instanceof EnrollmentRefused) {
        deps.logger.warn({ reason: err.message, from: req.socket.remoteAddress }, 'agent enrollment refused');
        throw new HttpProblem('enrollment-refused', err.message);
      }
      throw err;
    }
    const parsed = discoveredMachineSchema.safeParse(req.body?.machine);
    if (!parsed.success) {
      throw new HttpProblem('unprocessable-request', `the machine report is not valid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    const machine = parsed.data;
    const spec = template.state.template;
    const machineId = machineIdentity(machine);
    const migrationId = agentMigrationId(machineId);
    const handle = deps.client.workflow.getHandle(migrationId);
    let joined: string | undefined;
    try {
      const d = await handle.describe();
      if (d.status.name === 'RUNNING') joined = String(d.typedSearchAttributes.get(MigrationState) ?? 'Queued');
      const project = d.typedSearchAttributes.get(ProjectId);
      if (d.status.name === 'RUNNING' && project !== spec.project) {
        throw new HttpProblem('conflict', `machine ${machineId} is being migrated into another project already (migration ${migrationId})`);
      }
      if (d.status.name === 'COMPLETED') {
        throw new HttpProblem('conflict', `machine ${machineId} was migrated already (migration ${migrationId} completed at ${d.closeTime?.toISOString()}): power it off; remove the ISO to boot it from its own disk`);
      }
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    const gateway = { hostId: deps.agents.gateway.hostId, taskQueue: hostTaskQueue(deps.taskQueue, deps.agents.gateway.hostId) };
    const input: AgentMigrationInput = {
      migrationId,
      sourceId: 'agent',
      templateId: spec.templateId,
      machineId,
      machine,
      target: spec.target,
      ...(spec.guest ? { guest: spec.guest } : {}),
      autoStart: spec.autoStart,
      gateway,
      submittedBy: `agent-template:${spec.templateId}/${template.keyRecord.keyId}`,
    };
    const at = new Date().toISOString();
    let position: number | undefined;
    if (joined) {
      await handle.signal(agentEnrolledSignal, { runId: machine.bootId, at });
    } else {
      // A new migration goes through admission, as every migration does: its project's quotas apply, and it waits in
      // Queued while its project runs as many as it may.
      const result = await admit(deps, { actor: input.submittedBy, limits: deps.limits ?? {}, migrations: [{ migrationId, kind: 'agent', input }] });
      const outcome = result.outcomes[0]!;
      if (outcome.outcome === 'refused' && outcome.conflict === 'vm' && outcome.holder === migrationId) {
        // Another enrollment of this machine got there first (the agent tried again): this one joins it.
        joined = 'Queued';
        await handle.signal(agentEnrolledSignal, { runId: machine.bootId, at });
      } else if (outcome.outcome === 'refused') {
        throw new HttpProblem('conflict', `the migration of machine ${machineId} cannot start: ${outcome.reason}`);
      } else {
        position = outcome.position;
      }
    }
    deps.logger.info({ migrationId, machineId, runId: machine.bootId, templateId: spec.templateId, keyId: template.keyRecord.keyId }, 'agent enrolled');
    const exp = Date.now() + deps.agents.sessionLifetimeSeconds * 1000;
    return {
      migrationId,
      machineId,
      sessionToken: signSessionToken({ machineId, migrationId, runId: machine.bootId, exp }, sessionKey),
      // The agent enrolls again before then, as the same run: a copy of days goes on through the renewal.
      sessionExpiresAt: new Date(exp).toISOString(),
      gateway: { address: deps.agents.gateway.address, fingerprint },
      ...(spec.bandwidthLimitMbps ? { maxBytesPerSecond: spec.bandwidthLimitMbps * 125_000 } : {}),
      message: joined
        ? `this machine's migration is running (${joined}): it goes on from where it was`
        : !spec.autoStart
          ? 'the migration waits for a confirmation on the destination'
          : position
            ? `the migration waits for its turn on the destination (place ${position} in line)`
            : 'the migration starts now',
    };
  }

  app.use((req: Request, _res: Response, next: NextFunction) => next(new HttpProblem('not-found', `no route ${req.method} ${req.path.slice(0, 200)} on the agent endpoint`)));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof HttpProblem) return sendProblem(res, err);
    const status = (err as { status?: number; type?: string }).status;
    if (status === 400 || status === 413) return sendProblem(res, new HttpProblem(status === 413 ? 'payload-too-large' : 'invalid-request', 'the request body is not valid JSON or too large'));
    deps.logger.error({ err }, 'agent enrollment failed');
    sendProblem(res, new HttpProblem('internal-error', 'the enrollment failed on the server; its log has the cause'));
  });
  return app;
}

/** Serve the agent endpoint over HTTPS; resolves with the server once it listens. */
export async function serveEnrollment(deps: EnrollmentDeps, port = deps.agents.enrollment.port, host = deps.agents.enrollment.host): Promise<https.Server> {
  const { cert, key } = agentCertificate(deps.agents);
  const server = https.createServer({ cert, key, minVersion: 'TLSv1.2' }, createEnrollmentApp(deps));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  deps.logger.info({ port: (server.address() as AddressInfo).port }, 'agent endpoint listening');
  return server;
}
