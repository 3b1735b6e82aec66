from apps.notifier.telegram_sim.server import main

main()
