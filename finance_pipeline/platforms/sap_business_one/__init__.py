"""SAP Business One (Service Layer): the wholesale warehouse desk's ledger, a sales channel and a publish destination."""
