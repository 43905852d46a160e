from glancesync.cli import main

raise SystemExit(main())
