import { QueryClient } from "@tanstack/react-query";
import { retryDelay, shouldRetry } from "./api";

/** One client per tab, holding the defaults every query shares. */
export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        retry: shouldRetry,
        retryDelay,
        refetchOnWindowFocus: false,
      },
    },
  });
}
