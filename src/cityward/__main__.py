from cityward.cli import main

raise SystemExit(main())
