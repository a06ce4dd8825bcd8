/**
 * OpenTelemetry tracing for the worker and the CLI, configured by the standard `OTEL_*` variables and off
 * unless one of them asks for it. Off, nothing of OpenTelemetry is loaded: every import below is dynamic.
 *
 * On, spans go to an OTLP/HTTP collector (`OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT`, with
 * `OTEL_EXPORTER_OTLP_HEADERS` for its credentials, read by the exporter itself) through a batch processor,
 * and Temporal's OpenTelemetry interceptors carry the trace from the client that starts or steers a rollout
 * into the workflow and its activities: `model-rollout start` and the activities it causes share one trace.
 */
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Resource } from '@opentelemetry/resources';
import type { ClientInterceptors } from '@temporalio/client';
import type { Tracer } from '@opentelemetry/api';

export interface Tracing {
  serviceName: string;
  /** For spans of this process's own (the gateway's requests). */
  tracer: Tracer;
  /** The OpenTelemetry API, loaded with the SDK: callers take it from here so that, off, nothing is imported. */
  api: typeof import('@opentelemetry/api');
  resource: Resource;
  spanProcessor: SpanProcessor;
  /** Exports what is buffered and stops; call before the process exits. */
  shutdown(): Promise<void>;
}

/**
 * Whether the environment asks for traces: an OTLP endpoint, or `OTEL_TRACES_EXPORTER=otlp|console`; never
 * with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` (the specification's off switches).
 */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporter = (env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase();
  if (exporter === 'none') return false;
  if (exporter === 'otlp' || exporter === 'console') return true;
  return !!(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

let active: Tracing | null = null;

/** The tracing this process started, if any (the worker and the client read it to add the interceptors). */
export function activeTracing(): Tracing | null {
  return active;
}

/**
 * Starts tracing for this process when the environment asks for it (once; later calls return the same).
 * `defaultServiceName` applies unless `OTEL_SERVICE_NAME` names the service.
 */
export async function startTracing(
  defaultServiceName: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Tracing | null> {
  if (active || !tracingRequested(env)) return active;
  const [api, { NodeTracerProvider }, base, resources, { OTLPTraceExporter }] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/exporter-trace-otlp-http'),
  ]);
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || defaultServiceName;
  const resource = resources
    .detectResourcesSync({ detectors: [resources.envDetectorSync] })
    .merge(new resources.Resource({ 'service.name': serviceName }));
  const exporter =
    (env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase() === 'console'
      ? new base.ConsoleSpanExporter()
      : new OTLPTraceExporter();
  const spanProcessor = new base.BatchSpanProcessor(exporter);
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register();
  active = {
    serviceName,
    tracer: api.trace.getTracer('model-rollout'),
    api,
    resource,
    spanProcessor,
    async shutdown() {
      // Another call may start tracing again (tests do); a span after this one is simply not exported.
      active = null;
      await provider.shutdown().catch(() => {});
    },
  };
  return active;
}

/** Temporal's client interceptors for a traced process (none when tracing is off). */
export async function tracingClientInterceptors(): Promise<ClientInterceptors | undefined> {
  if (!active) return undefined;
  const { OpenTelemetryWorkflowClientInterceptor } = await import('@temporalio/interceptors-opentelemetry');
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor()] };
}
