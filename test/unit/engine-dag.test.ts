import { expect } from 'chai';
import { allNeeds, compileDag, type StepShape } from '../../engine/dag.js';
import { graphToDot, graphToJson, graphToText } from '../../engine/graph-format.js';
import { parsePlan } from '../../engine/plan/load.js';
import { planYaml, type PlanSpec } from '../fixtures/engine/plan-builder.js';

const STEPS: StepShape[] = [
  { name: 'prepare', description: 'prepare' },
  { name: 'release', description: 'release the old name', releasesName: true },
  { name: 'switch', description: 'switch the host', touchesHost: true },
  { name: 'verify', description: 'verify' },
];

function compile(spec: PlanSpec, steps: StepShape[] = STEPS) {
  return compileDag(parsePlan(planYaml(spec), 'plan.yaml'), steps);
}

function position(order: { id: string }[], id: string): number {
  const index = order.findIndex((step) => step.id === id);
  expect(index, `${id} in order`).to.be.greaterThan(-1);
  return index;
}

describe('DAG compilation', () => {
  it('chains each node\'s steps', () => {
    const dag = compile({ count: 2 });
    expect(graphToJson(dag).steps.filter((step) => step.node === 'n0')).to.deep.equal([
      { id: 'n0/prepare', node: 'n0', step: 'prepare', needs: [] },
      { id: 'n0/release', node: 'n0', step: 'release', needs: ['n0/prepare'] },
      { id: 'n0/switch', node: 'n0', step: 'switch', needs: ['n0/release'] },
      { id: 'n0/verify', node: 'n0', step: 'verify', needs: ['n0/switch'] },
    ]);
  });

  it('orders a rename chain', () => {
    // a takes b's name while b takes c's name
    const dag = compile({ nodes: [['a', 'b'], ['b', 'c'], ['c', 'd']] });
    expect(dag.byId.get('a/switch')!.needs).to.deep.equal(['a/release', 'b/release']);
    expect(dag.byId.get('b/switch')!.needs).to.deep.equal(['b/release', 'c/release']);
    expect(dag.byId.get('c/switch')!.needs).to.deep.equal(['c/release']);
    expect(position(dag.order, 'b/release')).to.be.lessThan(position(dag.order, 'a/switch'));
    expect(position(dag.order, 'c/release')).to.be.lessThan(position(dag.order, 'b/switch'));
  });

  it('falls back to the first and last steps', () => {
    const plain: StepShape[] = [{ name: 'one', description: '' }, { name: 'two', description: '' }];
    const dag = compile({ nodes: [['a', 'b'], ['b', 'c']] }, plain);
    expect(dag.byId.get('a/one')!.needs).to.deep.equal(['b/two']);
  });

  it('runs canary chains before any other node', () => {
    const dag = compile({ count: 4, canary: 2 });
    const firstOther = Math.min(position(dag.order, 'n2/prepare'), position(dag.order, 'n3/prepare'));
    expect(position(dag.order, 'n0/verify')).to.be.lessThan(firstOther);
    expect(position(dag.order, 'n1/verify')).to.be.lessThan(firstOther);
    expect(allNeeds(dag, dag.byId.get('n2/prepare')!)).to.deep.equal(['n0/verify', 'n1/verify']);
    expect(allNeeds(dag, dag.byId.get('n1/prepare')!)).to.deep.equal([]);
    expect(allNeeds(dag, dag.byId.get('n2/release')!)).to.deep.equal(['n2/prepare']);
  });

  it('lists every step once in JSON', () => {
    const json = graphToJson(compile({ count: 5, canary: 1 }));
    const ids = json.steps.map((step) => step.id);
    expect(ids).to.have.length(20);
    expect(new Set(ids).size).to.equal(20);
    const seen = new Set<string>();
    for (const step of json.steps) {
      for (const need of step.needs) expect(seen.has(need), `${need} before ${step.id}`).to.equal(true);
      seen.add(step.id);
    }
  });

  it('rejects broken recipes', () => {
    expect(() => compile({ count: 1 }, [])).to.throw('recipe has no steps');
    expect(() => compile({ count: 1 }, [{ name: 'Bad_Name', description: '' }])).to.throw('not kebab-case');
    expect(() => compile({ count: 1 }, [{ name: 'x', description: '' }, { name: 'x', description: '' }])).to.throw('appears twice');
  });

  it('prints text with waits', () => {
    const text = graphToText(compile({ nodes: [['a', 'b'], ['b', 'c']], canary: 0 }), STEPS);
    expect(text).to.include('2 nodes, 4 steps each, 8 steps in all');
    expect(text).to.include('a -> b\n');
    expect(text).to.match(/a\/switch\s+switch the host {2}\[waits for b\/release\]/);
  });

  it('prints Graphviz dot', () => {
    const dot = graphToDot(compile({ count: 2, canary: 1 }));
    expect(dot.startsWith('digraph renameplan {')).to.equal(true);
    expect(dot).to.include('"n0/release" -> "n0/switch";');
    expect(dot).to.include('"n0/verify" -> "canary finished";');
    expect(dot).to.include('"canary finished" -> "n1/prepare";');
    expect(dot.trimEnd().endsWith('}')).to.equal(true);
  });
});
