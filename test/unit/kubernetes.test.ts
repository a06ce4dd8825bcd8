import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ROOT } from '../helpers/cli-process';
import { parseCliArgs, readerOf } from '../helpers/deployment';

/**
 * deploy/kubernetes/ as the API server and the kubelet read it: every object valid against Kubernetes' OpenAPI
 * schema (kubernetes-models), selectors that select, probes on ports the containers declare, and, against the
 * code, container args the CLI parses, ports the processes listen on, and only environment variables the code
 * reads.
 */
const DIR = path.join(ROOT, 'deploy', 'kubernetes');
type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
  stringData?: Record<string, string>;
};
type Container = {
  name: string;
  image: string;
  args: string[];
  ports?: { name: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  volumeMounts?: { name: string; mountPath: string }[];
  [probe: string]: unknown;
};

const load = (file: string): Obj[] =>
  parseAllDocuments(fs.readFileSync(path.join(DIR, file), 'utf8')).map((d) => {
    expect(d.errors, file).toEqual([]);
    return d.toJS() as Obj;
  });
const kustomization = parse(fs.readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8')) as {
  resources: string[];
  images: { name: string }[];
};
const applied = kustomization.resources.flatMap(load);
const secrets = load('secrets.example.yaml');
const all = [...applied, ...secrets];
const find = (kind: string, name: string) => all.find((o) => o.kind === kind && o.metadata.name === name)!;
const deployments = applied.filter((o) => o.kind === 'Deployment');
const podSpecs = applied.flatMap((o) =>
  o.kind === 'Deployment' || o.kind === 'Job' ? [{ owner: o, pod: o.spec.template.spec }] : [],
);
const containersOf = (pod: { containers: Container[]; initContainers?: Container[] }) => [
  ...(pod.initContainers ?? []),
  ...pod.containers,
];
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'batch/v1/Job': Job,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
};

describe('Kubernetes manifests', () => {
  it('are valid objects of the Kubernetes API, all listed in the kustomization but the example Secrets', () => {
    const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
    expect([...kustomization.resources, 'kustomization.yaml', 'secrets.example.yaml'].sort()).toEqual(
      files.sort(),
    );
    for (const object of all) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      expect(Model, `${object.apiVersion} ${object.kind} ${object.metadata.name}`).toBeDefined();
      expect(
        () => new Model(object as never).validate(),
        `${object.kind} ${object.metadata.name}`,
      ).not.toThrow();
    }
    expect(applied.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ConfigMap/model-rollout-config',
      'Deployment/model-rollout-gateway',
      'Deployment/model-rollout-worker',
      'HorizontalPodAutoscaler/model-rollout-gateway',
      'Job/model-rollout-setup',
      'PodDisruptionBudget/model-rollout-gateway',
      'PodDisruptionBudget/model-rollout-worker',
      'Service/model-rollout-gateway',
    ]);
  });

  it('select what they mean to: Deployments their pods, the Service and PDBs their Deployment, the HPA the gateways', () => {
    for (const d of deployments)
      expect(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels), d.metadata.name).toBe(
        true,
      );
    const selected = (selector: Record<string, string>) =>
      deployments
        .filter((d) => matches(selector, d.spec.template.metadata.labels))
        .map((d) => d.metadata.name);
    expect(selected(find('Service', 'model-rollout-gateway').spec.selector)).toEqual([
      'model-rollout-gateway',
    ]);
    for (const name of ['model-rollout-gateway', 'model-rollout-worker'])
      expect(selected(find('PodDisruptionBudget', name).spec.selector.matchLabels)).toEqual([name]);
    const hpa = find('HorizontalPodAutoscaler', 'model-rollout-gateway').spec;
    expect(hpa.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'model-rollout-gateway',
    });
    // CPU utilization is a share of the request: without one the HPA cannot compute it.
    const gateway = find('Deployment', 'model-rollout-gateway').spec.template.spec.containers[0];
    expect(gateway.resources.requests.cpu).toBeDefined();
    expect(hpa.minReplicas).toBeGreaterThan(
      find('PodDisruptionBudget', 'model-rollout-gateway').spec.minAvailable,
    );
    // The Service forwards to the API port, never to the admin port (/metrics stays inside the cluster's pods).
    expect(
      find('Service', 'model-rollout-gateway').spec.ports.map((p: { targetPort: string }) => p.targetPort),
    ).toEqual(['http']);
  });

  it('run the image as the non-root user it was built with', () => {
    const user = /^USER (\d+):(\d+)$/m.exec(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))!;
    for (const { owner, pod } of podSpecs) {
      expect(pod.securityContext, owner.metadata.name).toMatchObject({
        runAsNonRoot: true,
        runAsUser: Number(user[1]),
        runAsGroup: Number(user[2]),
      });
      for (const c of containersOf(pod)) {
        expect(c.image, c.name).toBe(kustomization.images[0].name);
        expect(c.securityContext, c.name).toMatchObject({ allowPrivilegeEscalation: false });
      }
    }
  });

  it('pass only flags the CLI has, and listen where their ports, probes and scrape annotations say', async () => {
    const commands: string[] = [];
    for (const { owner, pod } of podSpecs) {
      for (const c of containersOf(pod)) {
        const { command, options } = await parseCliArgs(c.args);
        commands.push(`${command.join(' ')}${options.registerOnly ? ' --register-only' : ''}`);
        const port = (name: string) => c.ports?.find((p) => p.name === name)?.containerPort;
        // Every probe asks a port the container declares (by name or number).
        for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
          const probe = c[kind] as {
            httpGet?: { port: string | number };
            tcpSocket?: { port: string | number };
          };
          if (!probe) continue;
          const target = (probe.httpGet ?? probe.tcpSocket)!.port;
          expect(typeof target === 'number' ? target : port(target), `${c.name} ${kind}`).toBeDefined();
        }
        const annotations = owner.spec.template.metadata.annotations ?? {};
        if (command[0] === 'gateway') {
          expect(options).toMatchObject({ host: '0.0.0.0', adminHost: '0.0.0.0' });
          expect(String(port('http'))).toBe(options.port);
          expect(String(port('admin'))).toBe(options.adminPort);
          expect(annotations['prometheus.io/port']).toBe(options.adminPort);
          expect(c.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', port: 'admin' } });
          expect(c.livenessProbe).toMatchObject({ httpGet: { path: '/livez', port: 'admin' } });
        }
        if (command[0] === 'worker') {
          expect(options).toMatchObject({ metricsHost: '0.0.0.0', healthHost: '0.0.0.0' });
          expect(String(port('metrics'))).toBe(options.metricsPort);
          expect(String(port('health'))).toBe(options.healthPort);
          expect(c.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', port: 'health' } });
          expect(c.livenessProbe).toMatchObject({ httpGet: { path: '/livez', port: 'health' } });
          expect(annotations['prometheus.io/port']).toBe(options.metricsPort);
        }
      }
    }
    expect(commands.sort()).toEqual(['gateway', 'migrate', 'temporal --register-only', 'worker']);
  });

  it('give every container only environment variables the code reads, from the ConfigMap and the Secrets', () => {
    for (const { pod } of podSpecs)
      for (const c of containersOf(pod)) {
        const names: string[] = (c.env ?? []).map((e) => e.name);
        for (const source of c.envFrom ?? []) {
          const ref = source.configMapRef ?? source.secretRef!;
          const object = find(source.configMapRef ? 'ConfigMap' : 'Secret', ref.name);
          expect(object, `${c.name}: ${ref.name}`).toBeDefined();
          names.push(...Object.keys(object.data ?? object.stringData ?? {}));
        }
        expect(names).toContain('DATABASE_URL');
        expect(names).toContain('TEMPORAL_ADDRESS');
        for (const name of names) expect(readerOf(name), `${c.name}: ${name}`).toBeDefined();
      }
  });

  it('mount the gateway keys, alert channels, webhook gates and metric sources where the variables naming the files point', () => {
    const files = {
      GATEWAY_KEYS_FILE: 'model-rollout-gateway',
      ALERT_CHANNELS_FILE: 'model-rollout-worker',
      WEBHOOK_GATES_FILE: 'model-rollout-worker',
      METRIC_SOURCES_FILE: 'model-rollout-worker',
    };
    for (const [variable, deployment] of Object.entries(files)) {
      const pod = find('Deployment', deployment).spec.template.spec;
      const container: Container = pod.containers[0];
      const file = container.env!.find((e) => e.name === variable)!.value!;
      const mount = container.volumeMounts!.find((m) => file.startsWith(`${m.mountPath}/`))!;
      expect(mount, `${variable}=${file}`).toBeDefined();
      const volume = pod.volumes.find((v: { name: string }) => v.name === mount.name);
      const secret = find('Secret', volume.secret.secretName);
      expect(Object.keys(secret.stringData!), `${volume.secret.secretName}`).toContain(path.basename(file));
    }
  });
});
