import { AggregatorRegistry, Counter, Gauge, type Registry } from 'prom-client';
import { loadConfigText } from '../config/compile.ts';
import type { Logger } from '../observe/log.ts';
import type { Config } from '../config/compile.ts';
import type { ServedGateway } from '../gateway.ts';
import { isMessage, type FromWorker, type ToWorker } from './messages.ts';
import { workerId } from './share.ts';

/**
 * One traffic process of `serve --workers N`: the whole gateway (its own key caches, token cache,
 * pools, limit buckets) on the shared traffic port, no admin listener; the primary asks it for its
 * readiness and metrics, and tells it to reload and to drain.
 */
/** serve.ts's startFromFile, passed in: the worker is started by serve, never the other way round. */
type Start = (file: string, logger: Logger, options: { readonly worker: true }, load: () => Config) => Promise<ServedGateway>;

export async function runWorker(file: string, logger: Logger, startFromFile: Start): Promise<void> {
  const text = await configFromPrimary();
  const gateway = await startFromFile(file, logger, { worker: true }, () => loadConfigText(text, file));
  // Constructing one makes prom-client answer the primary's metric requests from this registry.
  void new AggregatorRegistry();
  AggregatorRegistry.setRegistries([gateway.metrics.registry]);
  registerWorkerMetrics(gateway.metrics.registry);
  const send = (m: FromWorker): void => void process.send?.(m);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void gateway.shutdown().then(() => process.exit(0));
  };
  process.on('message', (raw) => {
    if (!isMessage<ToWorker>(raw)) return;
    switch (raw.type) {
      case 'mcp-warden:status':
        return send({ type: 'mcp-warden:status', id: raw.id, ready: gateway.ready(), readiness: gateway.readiness() });
      case 'mcp-warden:reload':
        return void gateway.reloadWith(() => loadConfigText(raw.text, file)).then((ok) => send({ type: 'mcp-warden:reload', id: raw.id, ok }));
      case 'mcp-warden:config':
        return undefined;
      case 'mcp-warden:shutdown':
        return stop();
    }
  });
  // The primary coordinates signals: a terminal's Ctrl-C reaches the whole group, SIGHUP is the primary's.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.once('SIGTERM', stop);
  // Without a primary nothing would reload, answer admin or restart it: drain and go.
  process.once('disconnect', stop);
  send({ type: 'mcp-warden:listening', port: gateway.addresses.traffic.port });
}

function configFromPrimary(): Promise<string> {
  return new Promise((resolve) => {
    process.on('message', function onConfig(raw) {
      if (!isMessage<ToWorker>(raw) || raw.type !== 'mcp-warden:config') return;
      process.off('message', onConfig);
      resolve(raw.text);
    });
    process.send?.({ type: 'mcp-warden:config-request' } satisfies FromWorker);
  });
}

/** Per-worker series (worker = 1..N, a closed set), so the aggregate still shows how load spreads. */
function registerWorkerMetrics(registry: Registry): void {
  const worker = workerId() ?? '1';
  const info = new Gauge({ name: 'mcp_warden_worker_info', help: 'One series per worker process of serve --workers, with its pid', labelNames: ['worker', 'pid'], registers: [registry] });
  info.set({ worker, pid: String(process.pid) }, 1);
  const requests = registry.getSingleMetric('mcp_warden_requests_total');
  new Counter({
    name: 'mcp_warden_worker_requests_total', help: 'Requests answered by each worker process', labelNames: ['worker'], registers: [registry],
    async collect() {
      const values = requests === undefined ? [] : (await requests.get()).values;
      this.reset();
      this.inc({ worker }, values.reduce((sum, v) => sum + v.value, 0));
    },
  });
}

