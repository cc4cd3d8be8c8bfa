/**
 * Writes the results of the long reliability runs into `docs/reliability.md`, each run
 * between its own markers so the crash run and the soak can update their sections
 * independently.
 */

const DOC = new URL("../../docs/reliability.md", import.meta.url);

/** Replaces the section `name` (between `<!-- name:begin -->` and `<!-- name:end -->`). */
export async function writeDocSection(name: string, markdown: string): Promise<void> {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  let text: string;
  try {
    text = await Deno.readTextFile(DOC);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    text = "# Reliability results\n";
  }
  const block = `${begin}\n${markdown.trim()}\n${end}`;
  const start = text.indexOf(begin);
  const stop = text.indexOf(end);
  text = start >= 0 && stop > start
    ? text.slice(0, start) + block + text.slice(stop + end.length)
    : `${text.trimEnd()}\n\n${block}\n`;
  await Deno.writeTextFile(DOC, text);
}

/** A Markdown table from rows of cells. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** When and where a run happened, for the record. */
export function environment(): string {
  const cpus = navigator.hardwareConcurrency;
  return `${
    new Date().toISOString()
  }, Deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}, ${cpus} CPUs`;
}
