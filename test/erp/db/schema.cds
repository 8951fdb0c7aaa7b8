namespace erp;

using { managed } from '@sap/cds/common';

// A vehicle as the test ERP stores it. Property names and status codes
// differ from the stocktech_sync column names and enumerations on purpose,
// so that a connector profile has to map them (README.md has the tables).
entity Vehicles : managed {
  key VIN         : String(17);
      Model       : String(10);
      ModelYear   : Int16;
      Trim        : String(10);
      ColorCode   : String(4);
      EngineNo    : String(20);
      Dealer      : String(10);
      DealerName  : String(60);
      SalesStatus : String(2);
      FinStatus   : String(2);
      ListPrice   : Decimal(15, 2);
      Currency    : String(3);
      SalesOrder  : String(10);
      Customer    : String(10);
      StorageBin  : String(20);
      MaintStatus : String(1);
      PdiStatus   : String(2);
      InTransit   : Boolean default false;
      ArrivalDate : Date;
      Mileage     : Integer;
}
