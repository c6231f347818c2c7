import type { NextConfig } from "next";

// The Rust edge serves `out/` from disk on the same origin (SISE_WEB_DIR, default web/out),
// so the dashboard is a pure static export: no Node server, no rewrites, relative URLs only.
const nextConfig: NextConfig = {
  output: "export",
  trailingSlash: true,
  images: { unoptimized: true },
  reactStrictMode: true,
};

export default nextConfig;
