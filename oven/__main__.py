from oven._cli import main

raise SystemExit(main())
