// privilegesEqual is the guard against CVE-2026-33997 (engines before 29.3.1 skipped the first element
// when validating grants), so every element, including index 0, must be compared.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatPrivileges, privilegesEqual } from '../../../controller/plugin/privileges.ts';
import type { PluginPrivilege } from '../../../controller/api/types.ts';

const network: PluginPrivilege = { name: 'network', description: 'network access', value: ['host'] };
const mount: PluginPrivilege = {
  name: 'mount',
  description: 'host mounts',
  value: ['/var/lib/vol', '/etc/vol'],
};
const device: PluginPrivilege = { name: 'device', value: ['/dev/fuse'] };
const caps: PluginPrivilege = { name: 'capabilities', value: ['CAP_SYS_ADMIN'] };

interface Case {
  name: string;
  granted: PluginPrivilege[];
  required: PluginPrivilege[];
  equal: boolean;
}

const cases: Case[] = [
  { name: 'both empty', granted: [], required: [], equal: true },
  { name: 'identical lists', granted: [network, mount], required: [network, mount], equal: true },
  {
    name: 'same privileges in another order',
    granted: [mount, network],
    required: [network, mount],
    equal: true,
  },
  {
    name: 'values of one privilege in another order',
    granted: [network, { name: 'mount', value: ['/etc/vol', '/var/lib/vol'] }],
    required: [network, mount],
    equal: true,
  },
  {
    name: 'descriptions are ignored',
    granted: [{ name: 'network', description: 'something else', value: ['host'] }],
    required: [network],
    equal: true,
  },
  { name: 'nothing granted, something required', granted: [], required: [network], equal: false },
  { name: 'something granted, nothing required', granted: [network], required: [], equal: false },
  { name: 'one required privilege missing', granted: [network], required: [network, mount], equal: false },
  {
    name: 'one extra privilege granted',
    granted: [network, mount, caps],
    required: [network, mount],
    equal: false,
  },
  {
    name: 'only the FIRST element differs in its value (CVE-2026-33997)',
    granted: [{ name: 'network', value: ['bridge'] }, mount, device],
    required: [network, mount, device],
    equal: false,
  },
  {
    name: 'only the FIRST element differs in its name (CVE-2026-33997)',
    granted: [caps, mount, device],
    required: [network, mount, device],
    equal: false,
  },
  {
    name: 'only the last element differs',
    granted: [network, mount, { name: 'device', value: ['/dev/sda'] }],
    required: [network, mount, device],
    equal: false,
  },
  {
    name: 'a value missing inside one privilege',
    granted: [network, { name: 'mount', value: ['/var/lib/vol'] }],
    required: [network, mount],
    equal: false,
  },
  {
    name: 'an extra value inside one privilege',
    granted: [{ name: 'network', value: ['host', 'bridge'] }],
    required: [network],
    equal: false,
  },
  {
    name: 'duplicates count: [a, a] is not [a, b]',
    granted: [network, network],
    required: [network, mount],
    equal: false,
  },
  {
    name: 'duplicates count: [a, b] is not [a, a]',
    granted: [network, mount],
    required: [network, network],
    equal: false,
  },
  {
    name: 'duplicated privileges on both sides',
    granted: [network, network],
    required: [network, network],
    equal: true,
  },
  {
    name: 'duplicate values count inside one privilege',
    granted: [{ name: 'mount', value: ['/a', '/a'] }],
    required: [{ name: 'mount', value: ['/a'] }],
    equal: false,
  },
  {
    name: 'values are not split or joined: ["a,b"] is not ["a", "b"]',
    granted: [{ name: 'mount', value: ['/a,/b'] }],
    required: [{ name: 'mount', value: ['/a', '/b'] }],
    equal: false,
  },
  {
    name: 'same values moved to another privilege name',
    granted: [
      { name: 'mount', value: ['host'] },
      { name: 'network', value: ['/var/lib/vol', '/etc/vol'] },
    ],
    required: [network, mount],
    equal: false,
  },
];

describe('privilegesEqual', () => {
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(privilegesEqual(c.granted, c.required), c.equal);
      assert.equal(privilegesEqual(c.required, c.granted), c.equal, 'symmetric');
    });
  }

  test('does not reorder its arguments', () => {
    const granted = [mount, network];
    const required = [network, { ...mount, value: ['/etc/vol', '/var/lib/vol'] }];
    const before = structuredClone({ granted, required });
    privilegesEqual(granted, required);
    assert.deepEqual({ granted, required }, before);
  });
});

describe('formatPrivileges', () => {
  test('renders name=[values] in the given order', () => {
    assert.equal(formatPrivileges([network, mount]), 'network=[host], mount=[/var/lib/vol, /etc/vol]');
  });
  test('renders an empty list as none', () => {
    assert.equal(formatPrivileges([]), 'none');
  });
  test('renders a privilege without values', () => {
    assert.equal(formatPrivileges([{ name: 'allow-all-devices', value: [] }]), 'allow-all-devices=[]');
  });
});

// ---- properties ---------------------------------------------------------------------------------

// Small alphabets so that random lists collide often enough to exercise the "equal" side.
const nameArb = fc.constantFrom('network', 'mount', 'device', 'capabilities', 'allow-all-devices');
const valueArb = fc.array(fc.constantFrom('host', '/a', '/b', 'CAP_SYS_ADMIN', 'true', ''), { maxLength: 3 });
const privilegeArb: fc.Arbitrary<PluginPrivilege> = fc.record(
  { name: nameArb, value: valueArb, description: fc.string({ maxLength: 5 }) },
  { requiredKeys: ['name', 'value'] },
);
const listArb = fc.array(privilegeArb, { maxLength: 5 });

/** A permutation of `list` with each privilege's values permuted too. */
function permuted(list: readonly PluginPrivilege[]): fc.Arbitrary<PluginPrivilege[]> {
  return fc
    .tuple(
      fc.shuffledSubarray([...list], { minLength: list.length, maxLength: list.length }),
      fc.array(fc.boolean(), { minLength: list.length, maxLength: list.length }),
    )
    .map(([shuffled, flips]) =>
      shuffled.map((p, i) => ({ name: p.name, value: flips[i] ? [...p.value].reverse() : [...p.value] })),
    );
}

/** The oracle, written independently: a greedy matching of elements equal as (name, multiset of values). */
function sameMultiset(granted: readonly PluginPrivilege[], required: readonly PluginPrivilege[]): boolean {
  if (granted.length !== required.length) return false;
  const sameElement = (a: PluginPrivilege, b: PluginPrivilege): boolean => {
    if (a.name !== b.name || a.value.length !== b.value.length) return false;
    const left = [...a.value].sort();
    const right = [...b.value].sort();
    return left.every((v, i) => v === right[i]);
  };
  const used = required.map(() => false);
  for (const g of granted) {
    const index = required.findIndex((r, j) => !used[j] && sameElement(g, r));
    if (index === -1) return false;
    used[index] = true;
  }
  return true;
}

/** Alters the privilege at `index` so that it is certainly different as a (name, values multiset). */
type Alteration = 'omit' | 'rename' | 'addValue' | 'dropValue' | 'replaceValue';

function alter(list: readonly PluginPrivilege[], index: number, how: Alteration): PluginPrivilege[] {
  const out = list.map((p) => ({ name: p.name, value: [...p.value] }));
  const target = out[index]!;
  switch (how) {
    case 'omit':
      out.splice(index, 1);
      break;
    case 'rename':
      target.name = `${target.name}-altered`;
      break;
    case 'addValue':
      target.value.push('/altered');
      break;
    case 'dropValue':
      if (target.value.length === 0) target.value.push('/altered');
      else target.value.pop();
      break;
    case 'replaceValue':
      if (target.value.length === 0) target.name = `${target.name}-altered`;
      else target.value[0] = '/altered';
      break;
  }
  return out;
}

const alterationArb = fc.constantFrom<Alteration>('omit', 'rename', 'addValue', 'dropValue', 'replaceValue');

/** A non-empty required list, an index into it, and an alteration. */
const alteredArb = fc
  .array(privilegeArb, { minLength: 1, maxLength: 6 })
  .chain((required) => fc.tuple(fc.constant(required), fc.nat({ max: required.length - 1 }), alterationArb));

describe('privilegesEqual (properties)', () => {
  test('is true iff the multisets of (name, sorted values) are equal', () => {
    // Half the pairs are unrelated random lists, half are permutations of each other, possibly altered.
    const pairArb = listArb.chain((required) =>
      fc.oneof(
        fc.tuple(fc.constant(required), listArb),
        fc.tuple(fc.constant(required), permuted(required)),
        required.length === 0
          ? fc.tuple(fc.constant(required), listArb)
          : fc
              .tuple(fc.nat({ max: required.length - 1 }), alterationArb)
              .chain(([i, how]) => fc.tuple(fc.constant(required), permuted(alter(required, i, how)))),
      ),
    );
    fc.assert(
      fc.property(pairArb, ([required, granted]) => {
        assert.equal(privilegesEqual(granted, required), sameMultiset(granted, required));
      }),
      { numRuns: 2000 },
    );
  });

  test("any permutation of the list and of each privilege's values is equal", () => {
    fc.assert(
      fc.property(
        listArb.chain((required) => fc.tuple(fc.constant(required), permuted(required))),
        ([required, granted]) => {
          assert.equal(privilegesEqual(granted, required), true);
          assert.equal(privilegesEqual(required, granted), true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  test('omitting or altering any single element (any index, including 0) is never equal', () => {
    fc.assert(
      fc.property(alteredArb, fc.boolean(), ([required, index, how], shuffle) => {
        const altered = alter(required, index, how);
        const granted = shuffle ? [...altered].reverse() : altered;
        assert.equal(privilegesEqual(granted, required), false, `${how} at ${index}`);
      }),
      { numRuns: 2000 },
    );
  });

  test('altering only element 0 while keeping the rest in place is never equal', () => {
    fc.assert(
      fc.property(fc.array(privilegeArb, { minLength: 1, maxLength: 6 }), alterationArb, (required, how) => {
        const granted = alter(required, 0, how === 'omit' ? 'rename' : how);
        assert.deepEqual(
          granted.slice(1),
          required.slice(1).map((p) => ({ name: p.name, value: p.value })),
        );
        assert.equal(privilegesEqual(granted, required), false);
      }),
      { numRuns: 1000 },
    );
  });

  test('descriptions never matter', () => {
    fc.assert(
      fc.property(
        listArb,
        fc.array(fc.string(), { minLength: 5, maxLength: 5 }),
        (required, descriptions) => {
          const granted = required.map((p, i) => ({ ...p, description: descriptions[i] }));
          assert.equal(privilegesEqual(granted, required), true);
        },
      ),
    );
  });
});
