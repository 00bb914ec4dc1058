// The example's behaviour, run in Node with the SDK's test kit: the same cases as the Rust
// example's tests (plugins/myresource/src/lib.rs).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ClientError } from 'wasm-reconciler-sdk';
import { Operation, RecordedEvent, TestKit } from 'wasm-reconciler-sdk/testkit';

import reconciler, { DEPLOYMENT, JS_RESOURCE } from '../src/index.js';

function jsResource(spec) {
  return {
    apiVersion: 'mygroup.example.com/v1alpha1',
    kind: 'JsResource',
    metadata: { name: 'demo', namespace: 'default', uid: 'uid-1', generation: 3 },
    spec,
  };
}

function reconcile(kit, spec) {
  return kit.reconcile(reconciler, jsResource(spec));
}

/** A kit where the Deployment already runs `nginx:1.25` with one replica. */
function kitWithDeployment() {
  const kit = new TestKit();
  const outcome = reconcile(kit, { image: 'nginx:1.25', replicas: 1 });
  assert.ok(outcome.ok, outcome.error?.message);
  return kit;
}

const LABELS = { 'app.kubernetes.io/name': 'demo', 'app.kubernetes.io/managed-by': 'myresource-js' };

test('metadata is valid and owns deployments', () => {
  const metadata = reconciler.metadata();
  assert.doesNotThrow(() => metadata.validate());
  assert.equal(metadata.name, 'myresource-js');
  assert.ok(metadata.reconciles.equals(JS_RESOURCE));
  assert.deepEqual(metadata.ownedKinds, [DEPLOYMENT]);
});

test('creates the deployment and records Created', () => {
  const outcome = reconcile(new TestKit(), { image: 'nginx:1.27', replicas: 2 });

  assert.equal(outcome.response?.requeueAfterMs, null);
  assert.deepEqual(outcome.events, [RecordedEvent.normal('Created', 'Created deployment demo')]);
  assert.deepEqual(outcome.applied, [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'demo', labels: LABELS },
      spec: {
        replicas: 2,
        selector: { matchLabels: { 'app.kubernetes.io/name': 'demo' } },
        template: {
          metadata: { labels: LABELS },
          spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] },
        },
      },
    },
  ]);
});

test('the status reports what runs', () => {
  const outcome = reconcile(new TestKit(), { image: 'nginx:1.27', replicas: 2 });
  assert.deepEqual(outcome.statusPatches, [
    { observedGeneration: 3, deployment: 'demo', image: 'nginx:1.27', replicas: 2, readyReplicas: 0, invalidSpec: null },
  ]);
});

test('ready replicas come from the deployment status', () => {
  const kit = kitWithDeployment();
  const deployment = kit.client.object(DEPLOYMENT, 'demo');
  deployment.status = { replicas: 1, readyReplicas: 1 };
  kit.client.insert(deployment);

  const outcome = reconcile(kit, { image: 'nginx:1.25', replicas: 1 });
  assert.equal(outcome.status.readyReplicas, 1);
});

test('an unchanged deployment is left alone without an event', () => {
  const outcome = reconcile(kitWithDeployment(), { image: 'nginx:1.25', replicas: 1 });
  assert.ok(outcome.ok);
  assert.deepEqual(outcome.events, []);
  assert.deepEqual(outcome.applied, []);
  assert.equal(outcome.statusPatches.length, 1);
});

test('a changed image updates the deployment and says what changed', () => {
  const kit = kitWithDeployment();
  const outcome = reconcile(kit, { image: 'nginx:1.27', replicas: 1 });

  assert.deepEqual(outcome.events, [RecordedEvent.normal('Updated', 'Updated deployment demo: image nginx:1.25 -> nginx:1.27')]);
  assert.equal(outcome.applied.length, 1);
  assert.equal(kit.client.object(DEPLOYMENT, 'demo').spec.template.spec.containers[0].image, 'nginx:1.27');
  assert.equal(outcome.status.image, 'nginx:1.27');
});

test('a changed image and replicas are both named', () => {
  const outcome = reconcile(kitWithDeployment(), { image: 'nginx:1.27', replicas: 2 });
  assert.deepEqual(outcome.events, [
    RecordedEvent.normal('Updated', 'Updated deployment demo: image nginx:1.25 -> nginx:1.27, replicas 1 -> 2'),
  ]);
});

test('invalid specs are warned about, recorded in the status, and terminal', () => {
  const cases = [
    [{ replicas: 1 }, 'spec.image is missing'],
    [{ image: ' ', replicas: 1 }, 'spec.image is empty'],
    [{ image: 7, replicas: 1 }, 'spec.image must be a string, got 7'],
    [{ image: 'nginx' }, 'spec.replicas is missing'],
    [{ image: 'nginx', replicas: -1 }, 'spec.replicas must not be negative, got -1'],
    [{ image: 'nginx', replicas: 1.5 }, 'spec.replicas must be an integer, got 1.5'],
    [{ image: 'nginx', replicas: '3' }, 'spec.replicas must be an integer, got "3"'],
    [{ image: 'nginx', replicas: 3_000_000_000 }, 'spec.replicas must fit in an int32, got 3000000000'],
    [{ image: '', replicas: -2 }, 'spec.image is empty; spec.replicas must not be negative, got -2'],
    [null, 'spec is missing'],
  ];
  for (const [spec, problem] of cases) {
    const outcome = reconcile(new TestKit(), spec);
    const what = JSON.stringify(spec);

    assert.equal(outcome.error?.kind, 'terminal', what);
    assert.equal(outcome.error.message, `invalid spec: ${problem}`);
    assert.deepEqual(outcome.events, [RecordedEvent.warning('InvalidSpec', problem)], what);
    assert.deepEqual(outcome.statusPatches, [{ observedGeneration: 3, invalidSpec: problem }], what);
    assert.deepEqual(outcome.applied, [], what);
  }
});

test('an invalid spec is reported once per generation', () => {
  const kit = new TestKit();
  const first = reconcile(kit, { image: 'nginx', replicas: -1 });
  assert.equal(first.events.length, 1);

  // Requeued, e.g. by a change to the Deployment: the status already says it all.
  const again = kit.reconcile(reconciler, first.object);
  assert.equal(again.error?.kind, 'terminal');
  assert.deepEqual(again.events, []);
  assert.deepEqual(again.statusPatches, []);

  // A new generation with the same problem is a new spec to complain about.
  const next = structuredClone(first.object);
  next.metadata.generation = 4;
  assert.equal(kit.reconcile(reconciler, next).events.length, 1);
});

test('fixing the spec clears invalidSpec from the status', () => {
  const kit = new TestKit();
  reconcile(kit, { image: 'nginx' });
  const outcome = reconcile(kit, { image: 'nginx', replicas: 1 });
  assert.ok(!('invalidSpec' in outcome.status), JSON.stringify(outcome.status));
  assert.equal(outcome.status.replicas, 1);
});

test('an unavailable API server is transient', () => {
  const kit = new TestKit();
  kit.client.failNext(Operation.Get, ClientError.unavailable('connection refused'));
  const outcome = reconcile(kit, { image: 'nginx', replicas: 1 });

  assert.equal(outcome.error?.kind, 'transient');
  assert.equal(outcome.error.message, 'get deployment demo: API server unavailable: connection refused');
  assert.deepEqual(outcome.events, []);
  assert.deepEqual(outcome.applied, []);
});

test('API errors are transient and refusals terminal', () => {
  const cases = [
    [ClientError.api(409, 'conflict'), 'transient'],
    [ClientError.forbidden('not owned'), 'terminal'],
    [ClientError.invalid('bad object'), 'terminal'],
  ];
  for (const [clientError, kind] of cases) {
    const kit = new TestKit();
    kit.client.failNext(Operation.Apply, clientError);
    const outcome = reconcile(kit, { image: 'nginx', replicas: 1 });

    assert.equal(outcome.error?.kind, kind, clientError.message);
    assert.match(outcome.error.message, /^apply deployment demo: /);
    assert.deepEqual(outcome.events, [], 'no Created event for a failed apply');
  }
});

test('objects being deleted are left to garbage collection', () => {
  const object = jsResource({ image: 'nginx', replicas: 1 });
  object.metadata.deletionTimestamp = '2025-01-01T00:00:00Z';
  const outcome = new TestKit().reconcile(reconciler, object);

  assert.ok(outcome.ok);
  assert.deepEqual(outcome.applied, []);
  assert.deepEqual(outcome.statusPatches, []);
});
