export function Storage({ project }: { project: string }) {
  return <p class="muted">{project}: not yet in this version of the console.</p>;
}
export function BucketView({ project, bucket }: { project: string; bucket: string }) {
  return <p class="muted">{project}/{bucket}</p>;
}
