export function Functions({ project }: { project: string }) {
  return <p class="muted">{project}: not yet in this version of the console.</p>;
}
