// The replay mark (two left-pointing triangles), drawn as SVG so it shows without an emoji font.
export function ReplayIcon({ className = "h-3.5 w-3.5" }: { className?: string }) {
  return (
    <svg viewBox="0 0 16 16" aria-hidden className={`inline-block shrink-0 ${className}`} fill="currentColor">
      <path d="M8 3.5v9L1.5 8 8 3.5Zm6.5 0v9L8 8l6.5-4.5Z" />
    </svg>
  );
}
