from offers.cli import main

raise SystemExit(main())
