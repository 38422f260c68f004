/**
 * The folder READMEs, docs/ARCHITECTURE.md and README.md's layout, held to the tree they
 * describe: each folder's README names every file in it and the layers its files import, the
 * README's layout has a row for every folder of code, and a name the docs place in a file is
 * declared in that file. A file added, moved or split without its README is a failure here, not
 * a newcomer's wrong turn.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, normalize } from 'node:path';
import { REPO } from './helpers/cli.ts';

/** The folders whose README lists their files, and the layers among them (test/house.test.ts). */
const LISTED = ['ledger', 'consensus', 'node', 'cli', 'sim'] as const;
const CODE = /\.(ts|js|mjs)$/;

const read = (path: string): string => readFileSync(join(REPO, path), 'utf8');

function filesUnder(dir: string): string[] {
  return readdirSync(join(REPO, dir)).flatMap((name) => {
    const path = join(dir, name);
    return statSync(join(REPO, path)).isDirectory() ? filesUnder(path) : [path];
  });
}

/** The layers (`ledger/`, …) a README's "May import:" line names; none for "nothing of Cairn's". */
function mayImport(readme: string): Set<string> {
  const line = /^May import: (.*)$/m.exec(readme)?.[1];
  assert.ok(line !== undefined, 'a "May import:" line');
  return new Set([...line.matchAll(/`(\w+)\/`/g)].map((m) => m[1]!));
}

/** The layers `file` imports from, other than its own. */
function importedLayers(file: string): string[] {
  const text = read(file).replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/g), ...text.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g)].map((m) => m[1]!);
  return specs.map((spec) => normalize(join(dirname(file), spec)).split('/')[0]!).filter((layer) => layer !== file.split('/')[0]);
}

/** A declaration of `name` in source text: class, interface, type, function, const, let or an export list. */
function declares(text: string, name: string): boolean {
  return new RegExp(`\\b(class|interface|type|function\\*?|const|let|var)\\s+${name}\\b|export\\s*\\{[^}]*\\b${name}\\b`).test(text);
}

describe('the docs describe the tree as it is', () => {
  for (const folder of LISTED) {
    it(`${folder}/README.md names every file of ${folder}/ and the layers its files import`, () => {
      const readme = read(join(folder, 'README.md'));
      const files = filesUnder(folder).filter((f) => CODE.test(f));
      const unnamed = files.filter((f) => !readme.includes(basename(f)));
      assert.deepEqual(unnamed, [], `files ${folder}/README.md does not name`);
      const allowed = mayImport(readme);
      const beyond = [...new Set(files.flatMap((f) => importedLayers(f).filter((l) => !allowed.has(l)).map((l) => `${f} imports ${l}/`)))];
      assert.deepEqual(beyond, [], `${folder}/README.md's "May import:" leaves these out`);
    });
  }

  it("README.md's layout has a row for every folder with code or a README", () => {
    const readme = read('README.md');
    const rows = new Set([...readme.matchAll(/^\| `([\w-]+)\/` \|/gm)].map((m) => m[1]!));
    const folders = readdirSync(REPO).filter((name) => !name.startsWith('.') && !['node_modules', 'dist', 'docs'].includes(name) && statSync(join(REPO, name)).isDirectory());
    const withCode = folders.filter((f) => existsSync(join(REPO, f, 'README.md')) || filesUnder(f).some((p) => CODE.test(p)));
    assert.deepEqual(withCode.filter((f) => !rows.has(f)), []);
  });

  it("test/README.md's one-file command loads what .mocharc.json loads for every test, under the project's Node", () => {
    const command = /^One file: `([^`]+)`/m.exec(read('test/README.md'))?.[1];
    assert.ok(command !== undefined, 'test/README.md gives the command for one file');
    const config = JSON.parse(read('.mocharc.json')) as { require?: string[] };
    for (const module of config.require ?? []) assert.ok(command.includes(`--require ${module}`), `${command} loads ${module}`);
    // node_modules/.bin/mocha starts with `#!/usr/bin/env node`: the Node on PATH, which may not run TypeScript.
    assert.doesNotMatch(command, /^node_modules\/\.bin\//);
  });

  it('a name the docs place in a file ("`Name` (dir/file.ts" or "dir/file.ts `Name`") is declared there', () => {
    const docs = ['README.md', 'docs/ARCHITECTURE.md', ...LISTED.map((f) => `${f}/README.md`)];
    const wrong: string[] = [];
    for (const doc of docs) {
      const text = read(doc);
      const placed = [
        ...[...text.matchAll(/`([A-Za-z_]\w+)`,? \(([a-z-]+\/[\w/-]+\.(?:ts|js))/g)].map((m) => [m[1]!, m[2]!] as const),
        ...[...text.matchAll(/\b([a-z-]+\/[\w/-]+\.(?:ts|js)),? `([A-Za-z_]\w+)`/g)].map((m) => [m[2]!, m[1]!] as const),
      ];
      for (const [name, file] of placed) {
        if (!existsSync(join(REPO, file))) wrong.push(`${doc}: ${file} (for ${name}) does not exist`);
        else if (!declares(read(file), name)) wrong.push(`${doc}: ${name} is not declared in ${file}`);
      }
    }
    assert.deepEqual(wrong, []);
  });
});
