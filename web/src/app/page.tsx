import { QuoteBoard } from "@/features/quotes";

export default function HomePage() {
  return (
    <main className="mx-auto flex max-w-5xl flex-col gap-4 p-4">
      <header className="flex items-baseline gap-2">
        <h1 className="text-xl font-bold">시세</h1>
        <span className="text-sm text-gray-500">sise · real-time dashboard</span>
      </header>
      <QuoteBoard />
    </main>
  );
}
