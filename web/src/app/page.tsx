import { Dashboard } from "@/features/dashboard";

export default function HomePage() {
  return <Dashboard />;
}
