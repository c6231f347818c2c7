"use client";

// The layout on screen and its persistence. The layout id lives in the URL (`/?layout=<id>`,
// a query parameter because the site is a static export); its secret lives in this browser's
// localStorage keyed by id. Without the secret the layout opens read-only and can be copied to a
// new layout of one's own. Edits are applied at once and saved (debounced) with PUT; the first
// edit of the default layout creates one with POST.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, createLayout, layoutQueries, updateLayout, type StoredLayout } from "@/lib/api";
import { defaultLayout, parseLayout, type Layout } from "@/lib/layout";

const SECRET_PREFIX = "sise.layout.secret.";
const LAST_KEY = "sise.layout.last";
const SAVE_DELAY_MS = 400;

export type SaveState = "idle" | "saving" | "saved" | "error";

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

export function secretFor(id: string): string | null {
  return storage()?.getItem(SECRET_PREFIX + id) ?? null;
}

function remember(id: string, secret: string): void {
  storage()?.setItem(SECRET_PREFIX + id, secret);
  storage()?.setItem(LAST_KEY, id);
}

/** The layout id from the URL, else the last layout this browser owns. */
function initialLayoutId(): string | null {
  const fromUrl = new URLSearchParams(window.location.search).get("layout");
  if (fromUrl) return fromUrl;
  const last = storage()?.getItem(LAST_KEY) ?? null;
  if (last && secretFor(last)) {
    setUrlLayout(last);
    return last;
  }
  return null;
}

function setUrlLayout(id: string): void {
  const url = new URL(window.location.href);
  url.searchParams.set("layout", id);
  window.history.replaceState(window.history.state, "", url);
}

interface SaverEvents {
  onState: (s: SaveState) => void;
  onCreated: (created: StoredLayout & { secret: string }) => void;
  onSaved: (saved: StoredLayout) => void;
  onAuthLost: () => void;
}

/**
 * Debounced saving with one request in flight: edits made meanwhile are saved right after it.
 * The first save of a layout without an id creates it (POST) and remembers its secret.
 */
class LayoutSaver {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inFlight = false;
  private dirty: Layout | null = null;

  constructor(
    public id: string | null,
    private readonly events: SaverEvents,
  ) {}

  setId(id: string | null): void {
    this.id = id;
  }

  schedule(layout: Layout): void {
    this.dirty = layout;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), SAVE_DELAY_MS);
  }

  private async flush(): Promise<void> {
    this.timer = null;
    if (this.inFlight || !this.dirty) return;
    const toSave = this.dirty;
    this.dirty = null;
    this.inFlight = true;
    this.events.onState("saving");
    try {
      if (this.id === null) {
        const created = await createLayout(toSave);
        remember(created.id, created.secret);
        this.id = created.id;
        this.events.onCreated(created);
      } else {
        const secret = secretFor(this.id);
        if (!secret) throw new ApiError(401, "no_secret", "no secret for this layout");
        this.events.onSaved(await updateLayout(this.id, secret, toSave));
      }
      this.events.onState("saved");
    } catch (e) {
      this.events.onState("error");
      if (e instanceof ApiError && (e.status === 401 || e.status === 403) && this.id) {
        storage()?.removeItem(SECRET_PREFIX + this.id);
        this.events.onAuthLost();
      }
    } finally {
      this.inFlight = false;
      if (this.dirty && this.timer === null) this.timer = setTimeout(() => void this.flush(), SAVE_DELAY_MS);
    }
  }
}

export interface LayoutStore {
  layout: Layout;
  layoutId: string | null;
  /** False while a stored layout is loading. */
  ready: boolean;
  editable: boolean;
  /** The stored layout could not be loaded (unknown id): the default is shown instead. */
  missing: boolean;
  saveState: SaveState;
  update: (f: (l: Layout) => Layout) => void;
  copyToMine: () => Promise<void>;
  shareUrl: () => string;
}

export function useLayoutStore(): LayoutStore {
  const queryClient = useQueryClient();
  // Read the URL once; the dashboard mounts only on the client (see ClientOnly), after hydration.
  const [layoutId, setLayoutId] = useState<string | null>(initialLayoutId);
  const stored = useQuery({ ...layoutQueries.byId(layoutId ?? ""), enabled: layoutId !== null });
  const [edits, setEdits] = useState<{ forId: string | null; layout: Layout } | null>(null);
  const [saveState, setSaveState] = useState<SaveState>("idle");
  const [secretVersion, setSecretVersion] = useState(0);
  const editable = layoutId === null || (secretVersion >= 0 && secretFor(layoutId) !== null);
  const missing = stored.isError;

  const base: Layout | null = layoutId === null ? defaultLayout() : stored.data ? parseLayout(stored.data.layout) : stored.isError ? defaultLayout() : null;
  const layout = edits && edits.forId === layoutId ? edits.layout : base;

  const [saver] = useState(
    () =>
      new LayoutSaver(layoutId, {
        onState: setSaveState,
        onCreated: (created) => {
          queryClient.setQueryData(layoutQueries.byId(created.id).queryKey, { id: created.id, layout: created.layout, updated: created.updated });
          setUrlLayout(created.id);
          setEdits((e) => (e && e.forId === null ? { forId: created.id, layout: e.layout } : e));
          setLayoutId(created.id);
        },
        onSaved: (saved) => queryClient.setQueryData(layoutQueries.byId(saved.id).queryKey, saved),
        onAuthLost: () => setSecretVersion((v) => v + 1),
      }),
  );

  const current = useRef<Layout | null>(layout);
  useEffect(() => {
    current.current = layout;
    saver.setId(layoutId);
  }, [layout, layoutId, saver]);

  const update = useCallback(
    (f: (l: Layout) => Layout) => {
      const prev = current.current;
      if (!prev) return;
      const next = f(prev);
      if (next === prev) return;
      current.current = next;
      setEdits({ forId: saver.id, layout: next });
      if (editable) saver.schedule(next);
    },
    [editable, saver],
  );

  const copyToMine = useCallback(async () => {
    const l = current.current;
    if (!l) return;
    setSaveState("saving");
    try {
      const created = await createLayout(l);
      remember(created.id, created.secret);
      queryClient.setQueryData(layoutQueries.byId(created.id).queryKey, { id: created.id, layout: created.layout, updated: created.updated });
      saver.setId(created.id);
      setUrlLayout(created.id);
      setEdits({ forId: created.id, layout: l });
      setLayoutId(created.id);
      setSaveState("saved");
    } catch {
      setSaveState("error");
    }
  }, [queryClient, saver]);

  const shareUrl = useCallback(() => {
    const url = new URL(window.location.href);
    if (saver.id) url.searchParams.set("layout", saver.id);
    return url.toString();
  }, [saver]);

  return {
    layout: layout ?? defaultLayout(),
    layoutId,
    ready: layout !== null,
    editable,
    missing,
    saveState,
    update,
    copyToMine,
    shareUrl,
  };
}
