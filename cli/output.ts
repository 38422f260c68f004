/** Where a command's answer goes: JSON for scripts with --json, lines for people otherwise. */
export interface Out {
  readonly json: boolean;
  result(data: unknown, human: string): void;
  help(text: string): void;
}

export function createOut(json: boolean, write: (text: string) => void = (t) => process.stdout.write(t)): Out {
  return {
    json,
    result(data, human) {
      write((json ? JSON.stringify(data, null, 2) : human) + '\n');
    },
    help(text) {
      write(text + '\n');
    },
  };
}

/** A table of label/value lines, aligned. */
export function lines(rows: [string, string | number | boolean | null][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v ?? '-'}`).join('\n');
}
