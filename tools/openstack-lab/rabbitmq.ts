/**
 * The lab's RabbitMQ node: private node name, ports, mnesia and log directories, Erlang cookie (HOME) and an epmd
 * of its own on a private port, all on 127.0.0.1, so it neither sees nor disturbs a system RabbitMQ.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { canConnect } from './mariadb';
import { logTail, sleep, type ProcessSet } from './proc';

export interface RabbitPorts {
  amqp: number;
  dist: number;
  epmd: number;
}

export async function startRabbitMq(procs: ProcessSet, dir: string, ports: RabbitPorts): Promise<void> {
  for (const d of ['mnesia', 'log', 'home']) mkdirSync(path.join(dir, d), { recursive: true });
  const conf = path.join(dir, 'rabbitmq.conf');
  // guest may log in from loopback only, which is all the lab uses.
  writeFileSync(
    conf,
    `listeners.tcp.1 = 127.0.0.1:${ports.amqp}
log.console = true
log.console.level = warning
log.file = false
`,
  );
  const plugins = path.join(dir, 'enabled_plugins');
  writeFileSync(plugins, '[].\n');
  const env = {
    HOME: path.join(dir, 'home'),
    ERL_EPMD_PORT: String(ports.epmd),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_NODENAME: `lab${ports.amqp}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(ports.amqp),
    RABBITMQ_DIST_PORT: String(ports.dist),
    RABBITMQ_CONFIG_FILE: conf,
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: plugins,
    RABBITMQ_PID_FILE: path.join(dir, 'rabbit.pid'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  // Our own epmd in the foreground: the one erl would start daemonizes and outlives the lab.
  procs.start('epmd', 'epmd', ['-port', String(ports.epmd), '-address', '127.0.0.1'], { env });
  for (let i = 0; i < 50 && !(await canConnect(ports.epmd)); i++) await sleep(50);
  // Its graceful stop takes ~10 s and the lab's queues are disposable.
  const svc = procs.start('rabbitmq', '/usr/lib/rabbitmq/bin/rabbitmq-server', [], { env, cwd: dir, graceMs: 2_000 });
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (svc.exitCode() !== null) throw new Error(`rabbitmq exited with ${svc.exitCode()}:\n${logTail(svc.logFile)}`);
    if (await canConnect(ports.amqp)) return;
    if (Date.now() > deadline) throw new Error(`rabbitmq did not listen on 127.0.0.1:${ports.amqp}:\n${logTail(svc.logFile)}`);
    await sleep(200);
  }
}
